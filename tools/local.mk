# tools/local.mk: fragment of the top Makefile.am (include tools/local.mk).
# Architecture checks run by `make check` (POSIX sh + awk + nm; no python):
#   check-layers.test   includes and library symbols point one way (kernel_iface <- core <- io/debug/chan)
#   check-atomics.test  no implicit seq_cst C11 atomic calls (atomic_load( etc. without _explicit)
# The wrappers print TAP, so they run under the TAP TEST_LOG_DRIVER of Makefile.am (.test is
# automake's default TEST_EXTENSION). They find the scripts next to themselves and read
# top_srcdir/top_builddir from AM_TESTS_ENVIRONMENT. check-layers reads the objects of
# libringo_internal.la, which `make check` builds before running the tests.
# selftest.sh + fixtures/ test the checkers themselves: sh tools/selftest.sh
RINGO_CHECK_TESTS = \
	%reldir%/check-layers.test \
	%reldir%/check-atomics.test
TESTS += $(RINGO_CHECK_TESTS)
dist_check_SCRIPTS += $(RINGO_CHECK_TESTS)
EXTRA_DIST += \
	%reldir%/check-layers.sh \
	%reldir%/check-atomics.sh \
	%reldir%/selftest.sh \
	%reldir%/fixtures
# `make check-arch`: only these two tests (builds just the library they inspect)
check-arch: libringo_internal.la
	$(MAKE) $(AM_MAKEFLAGS) check-TESTS TESTS='$(RINGO_CHECK_TESTS)'
.PHONY: check-arch
