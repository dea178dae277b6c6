# tests/cgroup.mk: fragment of the top Makefile.am
# test_cgroup writes its cgroup fixture trees into a temporary directory ($TMPDIR or /tmp)
# and removes them; its child processes read them through RINGO_TEST_CGROUP_ROOT.
check_PROGRAMS += %reldir%/test_cgroup
TESTS += %reldir%/test_cgroup
%canon_reldir%_test_cgroup_SOURCES = %reldir%/test_cgroup.c %reldir%/testutil.h
%canon_reldir%_test_cgroup_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_cgroup_CFLAGS = $(RINGO_TEST_CFLAGS)
