# tests/io.mk: the I/O tests.
#
#   test_io     every I/O call on goroutines and plain threads; runs once on the default backend
#               (io_uring with DEFER_TASKRUN and FUTEX_WAIT here) and once per forced fallback,
#               through wrapper scripts that set RINGO_DISABLE and exec the same binary (their
#               TAP output goes through the same driver). It spawns examples/http_server,
#               examples/echo_server and bench/b9_http, so it depends on them.
#   test_net    datagrams, ancillary data, Unix sockets, shutdown, sendfile, ringo_resolve; once
#               on the default backend, with RINGO_DISABLE=io_uring (net_nouring.sh) and with
#               RINGO_DISABLE=pbuf_ring (net_nopbuf.sh: ringo_recv_lend without the kernel ring)
#   stress_io   4-entry rings (the SQ-full paths), a close storm, deadlines racing data
#               (RINGO_STRESS_ITERS scales it)
IO_TESTS = %reldir%/test_io %reldir%/test_net %reldir%/stress_io
check_PROGRAMS += $(IO_TESTS)
%canon_reldir%_test_io_SOURCES = %reldir%/test_io.c %reldir%/ioutil.h
%canon_reldir%_test_io_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_io_LDADD = $(RINGO_TEST_LIBS)
EXTRA_%canon_reldir%_test_io_DEPENDENCIES = examples/http_server examples/echo_server bench/b9_http
if HAVE_OPENSSL
EXTRA_%canon_reldir%_test_io_DEPENDENCIES += examples/https_server
endif
%canon_reldir%_test_net_SOURCES = %reldir%/test_net.c %reldir%/ioutil.h
%canon_reldir%_test_net_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_net_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_stress_io_SOURCES = %reldir%/stress_io.c %reldir%/ioutil.h
%canon_reldir%_stress_io_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_stress_io_LDADD = $(RINGO_TEST_LIBS)
IO_FALLBACK_TESTS = %reldir%/io_nouring.sh %reldir%/net_nouring.sh %reldir%/net_nopbuf.sh %reldir%/io_nofutex.sh %reldir%/io_nodefer.sh %reldir%/io_nohandoff.sh
TESTS += $(IO_TESTS) $(IO_FALLBACK_TESTS)
dist_check_SCRIPTS += $(IO_FALLBACK_TESTS)
