# tests/core.mk: runtime-core tests (switch, goroutines, workers, park, timers, timer channels, sync)
CORE_TESTS = \
	%reldir%/test_switch \
	%reldir%/test_runq \
	%reldir%/test_goroutine \
	%reldir%/test_gls \
	%reldir%/test_worker \
	%reldir%/test_park \
	%reldir%/test_timer \
	%reldir%/test_timechan \
	%reldir%/test_sync \
	%reldir%/test_group \
	%reldir%/test_lockthread \
	%reldir%/test_sync2 \
	%reldir%/test_blocking \
	%reldir%/test_handoff \
	%reldir%/stress_sched
check_PROGRAMS += $(CORE_TESTS)
TESTS += $(CORE_TESTS)
EXTRA_DIST += %reldir%/testutil.h
%canon_reldir%_test_switch_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_switch_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_goroutine_LDADD = $(RINGO_TEST_LIBS) $(NUMA_LIBS)
# the 64 KiB-frame overflow test models a program built without stack-clash probes (configure.ac)
%canon_reldir%_test_goroutine_CFLAGS = $(RINGO_TEST_CFLAGS) $(STACK_CLASH_OFF_CFLAGS)
%canon_reldir%_test_gls_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_gls_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_worker_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_worker_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_park_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_park_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_timer_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_timer_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_timechan_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_timechan_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_sync_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_sync_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_group_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_group_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_lockthread_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_lockthread_CFLAGS = $(RINGO_TEST_CFLAGS)
# test_group again on the epoll backend (cancels end epoll waits by their claim, not ASYNC_CANCEL)
TESTS += %reldir%/group_nouring.sh
dist_check_SCRIPTS += %reldir%/group_nouring.sh
%canon_reldir%_test_sync2_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_sync2_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_stress_sched_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_stress_sched_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_runq_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_runq_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_blocking_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_blocking_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_handoff_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_handoff_CFLAGS = $(RINGO_TEST_CFLAGS)
