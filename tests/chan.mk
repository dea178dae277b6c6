# tests/chan.mk: fragment of the top Makefile.am — channels, select, deadlock report, examples.
#
#   test_chan      every ringo_chan_* call and error code, sizes x caps, goroutines and threads
#   test_select    ringo_select: cases, timeouts, fairness, withdrawal, close, both sides
#   stress_chan    exactly-once MPMC stress (RINGO_STRESS_ITERS scales it; CI runs it under tsan)
#   test_deadlock  the Go deadlock report, and no false report (child processes)
#   test_examples  runs examples/*, compares with examples/*.expected and the exit status
CHAN_TESTS = \
	%reldir%/test_chan \
	%reldir%/test_select \
	%reldir%/stress_chan \
	%reldir%/test_deadlock \
	%reldir%/test_examples
check_PROGRAMS += $(CHAN_TESTS)
TESTS += $(CHAN_TESTS)

%canon_reldir%_test_chan_SOURCES = %reldir%/test_chan.c %reldir%/testutil.h %reldir%/chanutil.h
%canon_reldir%_test_chan_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_chan_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_select_SOURCES = %reldir%/test_select.c %reldir%/testutil.h %reldir%/chanutil.h
%canon_reldir%_test_select_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_select_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_stress_chan_SOURCES = %reldir%/stress_chan.c %reldir%/testutil.h %reldir%/chanutil.h
%canon_reldir%_stress_chan_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_stress_chan_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_deadlock_SOURCES = %reldir%/test_deadlock.c %reldir%/testutil.h
%canon_reldir%_test_deadlock_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_deadlock_CFLAGS = $(RINGO_TEST_CFLAGS)
# test_examples spawns the example programs (built from examples/local.mk) and reads their
# .expected files from $top_srcdir; it must not run before they are linked.
%canon_reldir%_test_examples_SOURCES = %reldir%/test_examples.c %reldir%/testutil.h
%canon_reldir%_test_examples_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_examples_CFLAGS = $(RINGO_TEST_CFLAGS) \
	-DEXAMPLES_BUILDDIR='"$(abs_top_builddir)/examples"' -DEXAMPLES_SRCDIR='"$(abs_top_srcdir)/examples"'
EXTRA_%canon_reldir%_test_examples_DEPENDENCIES = $(CHAN_EXAMPLES)
