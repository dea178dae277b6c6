# bench/local.mk: fragment of the top Makefile.am — the benchmark suite (BENCH.md, bench/README.md).
#
# The ringo programs (B1-B10) link libringo.la exactly as a user program would; the C baselines
# and the echo load client link nothing of ringo. All are noinst_PROGRAMS, so a plain `make`
# keeps them compiling (libdill's perf/ habit). The Go peers are built by bench/run, offline, into
# $(builddir)/bench/go/bin.
#
#   make bench            full run: 5 measured runs after a warm-up, procs = 1 and all CPUs
#   make bench QUICK=1    short run, under two minutes

BENCH_PROGS = \
	%reldir%/b1_spawn \
	%reldir%/b2_yield \
	%reldir%/b3_pingpong \
	%reldir%/b4_buffered \
	%reldir%/b5_select \
	%reldir%/b6_skynet \
	%reldir%/b7_memory \
	%reldir%/b8_echo \
	%reldir%/b9_http \
	%reldir%/b10_timers \
	%reldir%/b11_stuck

BENCH_BASELINES = \
	%reldir%/baseline/echo_threads \
	%reldir%/baseline/echo_epoll \
	%reldir%/baseline/http_threads \
	%reldir%/baseline/http_epoll \
	%reldir%/baseline/echo_load

noinst_PROGRAMS += $(BENCH_PROGS) $(BENCH_BASELINES) %reldir%/b12_idle

%canon_reldir%_b1_spawn_SOURCES = %reldir%/b1_spawn.c %reldir%/bench_util.h
%canon_reldir%_b1_spawn_LDADD = libringo.la
%canon_reldir%_b2_yield_SOURCES = %reldir%/b2_yield.c %reldir%/bench_util.h
%canon_reldir%_b2_yield_LDADD = libringo.la
%canon_reldir%_b3_pingpong_SOURCES = %reldir%/b3_pingpong.c %reldir%/bench_util.h
%canon_reldir%_b3_pingpong_LDADD = libringo.la
%canon_reldir%_b4_buffered_SOURCES = %reldir%/b4_buffered.c %reldir%/bench_util.h
%canon_reldir%_b4_buffered_LDADD = libringo.la
%canon_reldir%_b5_select_SOURCES = %reldir%/b5_select.c %reldir%/bench_util.h
%canon_reldir%_b5_select_LDADD = libringo.la
%canon_reldir%_b6_skynet_SOURCES = %reldir%/b6_skynet.c %reldir%/bench_util.h
%canon_reldir%_b6_skynet_LDADD = libringo.la
%canon_reldir%_b7_memory_SOURCES = %reldir%/b7_memory.c %reldir%/bench_util.h
%canon_reldir%_b7_memory_LDADD = libringo.la
%canon_reldir%_b8_echo_SOURCES = %reldir%/b8_echo.c %reldir%/bench_util.h
%canon_reldir%_b8_echo_LDADD = libringo.la
%canon_reldir%_b9_http_SOURCES = %reldir%/b9_http.c %reldir%/bench_util.h
%canon_reldir%_b9_http_LDADD = libringo.la
# tests/test_io runs it, as it runs the example servers: a real binary, not a libtool wrapper
# script (which a cross-built test under qemu-user could not exec)
%canon_reldir%_b9_http_LDFLAGS = $(AM_LDFLAGS) -no-install
%canon_reldir%_b10_timers_SOURCES = %reldir%/b10_timers.c %reldir%/bench_util.h
%canon_reldir%_b10_timers_LDADD = libringo.la
%canon_reldir%_b11_stuck_SOURCES = %reldir%/b11_stuck.c %reldir%/bench_util.h
%canon_reldir%_b11_stuck_LDADD = libringo.la

%canon_reldir%_b12_idle_SOURCES = %reldir%/b12_idle.c

BENCH_SHAPES = %reldir%/baseline/server_shapes.c %reldir%/bench_util.h
%canon_reldir%_baseline_echo_threads_SOURCES = %reldir%/baseline/echo_threads.c $(BENCH_SHAPES)
%canon_reldir%_baseline_echo_epoll_SOURCES = %reldir%/baseline/echo_epoll.c $(BENCH_SHAPES)
%canon_reldir%_baseline_http_threads_SOURCES = %reldir%/baseline/http_threads.c $(BENCH_SHAPES)
%canon_reldir%_baseline_http_epoll_SOURCES = %reldir%/baseline/http_epoll.c $(BENCH_SHAPES)
%canon_reldir%_baseline_echo_load_SOURCES = %reldir%/baseline/echo_load.c %reldir%/bench_util.h

EXTRA_DIST += \
	%reldir%/run \
	%reldir%/idle \
	%reldir%/tls \
	%reldir%/README.md \
	%reldir%/go/go.mod \
	%reldir%/go/benchutil/benchutil.go \
	%reldir%/go/b1_spawn/main.go \
	%reldir%/go/b2_yield/main.go \
	%reldir%/go/b3_pingpong/main.go \
	%reldir%/go/b4_buffered/main.go \
	%reldir%/go/b5_select/main.go \
	%reldir%/go/b6_skynet/main.go \
	%reldir%/go/b7_memory/main.go \
	%reldir%/go/b8_echo/main.go \
	%reldir%/go/b9_http/main.go \
	%reldir%/go/b10_timers/main.go

# The runner finds the tools configure found (empty: it looks on PATH itself) and takes the
# build and source folders as arguments. Everything it writes goes under bench/ in the build
# folder: results/ (with logs/ and nginx/), go/bin/, and baseline/ when make has not built it.
.PHONY: bench bench-oversub bench-idle bench-tls
bench: $(BENCH_PROGS) $(BENCH_BASELINES)
	QUICK='$(QUICK)' GO='$(GO)' WRK='$(WRK)' NGINX='$(NGINX)' GNUPLOT='$(GNUPLOT)' CC='$(CC)' \
	  bash '$(abs_top_srcdir)/%reldir%/run' '$(abs_top_builddir)' '$(abs_top_srcdir)'

# Oversubscription (issue 12): 1 worker, one per CPU, and four per CPU, each against Go at the
# same GOMAXPROCS; a scaling table for each count above 1.
bench-oversub: $(BENCH_PROGS) $(BENCH_BASELINES)
	n=$$(nproc); RINGO_BENCH_PROCS="1 $$n $$((4 * n))" \
	QUICK='$(QUICK)' GO='$(GO)' WRK='$(WRK)' NGINX='$(NGINX)' GNUPLOT='$(GNUPLOT)' CC='$(CC)' \
	  bash '$(abs_top_srcdir)/%reldir%/run' '$(abs_top_builddir)' '$(abs_top_srcdir)'

# B12 idle connections (issue 13): RSS per idle connection and after the clients leave.
bench-idle: %reldir%/b8_echo %reldir%/b12_idle %reldir%/baseline/echo_epoll examples/http_server
	GO='$(GO)' NGINX='$(NGINX)' bash '$(abs_top_srcdir)/%reldir%/idle' '$(abs_top_builddir)' '$(abs_top_srcdir)'

# B13 TLS (issue 13): examples/https_server against nginx with the same certificate, wrk.
if HAVE_OPENSSL
bench-tls: examples/https_server
	WRK='$(WRK)' NGINX='$(NGINX)' bash '$(abs_top_srcdir)/%reldir%/tls' '$(abs_top_builddir)' '$(abs_top_srcdir)'
else
bench-tls:
	@echo "bench-tls: configure found no OpenSSL (apt-get install libssl-dev)"; exit 1
endif
