# tests/topology.mk: fragment of the top Makefile.am
# test_topology reads the fixtures in %reldir%/fixtures/topology through $top_srcdir (exported
# by AM_TESTS_ENVIRONMENT), else through the path compiled in below.
check_PROGRAMS += %reldir%/test_topology
TESTS += %reldir%/test_topology
%canon_reldir%_test_topology_SOURCES = %reldir%/test_topology.c
%canon_reldir%_test_topology_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_topology_CFLAGS = $(RINGO_TEST_CFLAGS) -DTOPO_FIXTURES='"$(abs_top_srcdir)/tests/fixtures/topology"'
# The fixture tree (sysfs-shaped directories) and the script that generated it; automake copies
# a directory in EXTRA_DIST recursively.
EXTRA_DIST += %reldir%/fixtures/topology
