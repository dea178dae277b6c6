# tests/io.mk: the I/O tests. test_io runs once on the default backend (io_uring with
# DEFER_TASKRUN and FUTEX_WAIT here) and once per forced fallback, through wrapper scripts that
# set RINGO_DISABLE and exec the same binary (their TAP output goes through the same driver).
check_PROGRAMS += %reldir%/test_io
%canon_reldir%_test_io_SOURCES = %reldir%/test_io.c
%canon_reldir%_test_io_CFLAGS = $(RINGO_TEST_CFLAGS)
%canon_reldir%_test_io_LDADD = $(RINGO_TEST_LIBS)
IO_FALLBACK_TESTS = %reldir%/io_nouring.sh %reldir%/io_nofutex.sh %reldir%/io_nodefer.sh
TESTS += %reldir%/test_io $(IO_FALLBACK_TESTS)
dist_check_SCRIPTS += $(IO_FALLBACK_TESTS)
