# tests/core.mk: runtime-core tests (switch, goroutines, workers, park, timers, sync)
CORE_TESTS = \
	tests/test_switch \
	tests/test_runq \
	tests/test_goroutine \
	tests/test_worker \
	tests/test_park \
	tests/test_timer \
	tests/test_sync \
	tests/test_blocking \
	tests/stress_sched
check_PROGRAMS += $(CORE_TESTS)
TESTS += $(CORE_TESTS)
EXTRA_DIST += %reldir%/testutil.h
tests_test_switch_LDADD = $(RINGO_TEST_LIBS)
tests_test_switch_CFLAGS = $(RINGO_TEST_CFLAGS)
tests_test_goroutine_LDADD = $(RINGO_TEST_LIBS) $(NUMA_LIBS)
# the 64 KiB-frame overflow test models a program built without stack-clash probes (configure.ac)
tests_test_goroutine_CFLAGS = $(RINGO_TEST_CFLAGS) $(STACK_CLASH_OFF_CFLAGS)
tests_test_worker_LDADD = $(RINGO_TEST_LIBS)
tests_test_worker_CFLAGS = $(RINGO_TEST_CFLAGS)
tests_test_park_LDADD = $(RINGO_TEST_LIBS)
tests_test_park_CFLAGS = $(RINGO_TEST_CFLAGS)
tests_test_timer_LDADD = $(RINGO_TEST_LIBS)
tests_test_timer_CFLAGS = $(RINGO_TEST_CFLAGS)
tests_test_sync_LDADD = $(RINGO_TEST_LIBS)
tests_test_sync_CFLAGS = $(RINGO_TEST_CFLAGS)
tests_stress_sched_LDADD = $(RINGO_TEST_LIBS)
tests_stress_sched_CFLAGS = $(RINGO_TEST_CFLAGS)
tests_test_runq_LDADD = $(RINGO_TEST_LIBS)
tests_test_runq_CFLAGS = $(RINGO_TEST_CFLAGS)
tests_test_blocking_LDADD = $(RINGO_TEST_LIBS)
tests_test_blocking_CFLAGS = $(RINGO_TEST_CFLAGS)
