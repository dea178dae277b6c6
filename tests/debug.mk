# tests/debug.mk: fragment of the top Makefile.am — the debugging and profiling tools.
#
#   test_debug   ringo_dump names and frames, RINGO_DEBUG=stats/schedtrace/hog/sigquit, gdb
#                (tools/ringo-gdb.py), perf call chains, valgrind memcheck, and, in sanitizer
#                builds, ASan/TSan catching bugs inside goroutines (skipped where a tool is
#                missing or not permitted)
#
# The gdb extension is installed twice: as $(pkgdatadir)/ringo-gdb.py, to `source` by hand, and
# as gdb's auto-load script of the library, $(datadir)/gdb/auto-load$(libdir)/libringo.so.X.Y.Z-gdb.py
# (gdb loads it by itself when the prefix is gdb's own, /usr; see the README otherwise).
check_PROGRAMS += %reldir%/test_debug
TESTS += %reldir%/test_debug
%canon_reldir%_test_debug_SOURCES = %reldir%/test_debug.c %reldir%/testutil.h
%canon_reldir%_test_debug_LDADD = $(RINGO_TEST_LIBS)
%canon_reldir%_test_debug_CFLAGS = $(RINGO_TEST_CFLAGS) -DRINGO_SRCDIR='"$(abs_top_srcdir)"'

dist_pkgdata_DATA = tools/ringo-gdb.py
gdbautoloaddir = $(datadir)/gdb/auto-load$(libdir)

# libtool names the library libringo.so.(current-age).age.revision
RINGO_SO_NAME = v='$(RINGO_LT_VERSION)'; IFS=:; set -- $$v; IFS=' '; so="libringo.so.$$(($$1 - $$3)).$$3.$$2"

install-data-local:
	@$(RINGO_SO_NAME); \
	$(MKDIR_P) "$(DESTDIR)$(gdbautoloaddir)" && \
	echo " $(INSTALL_DATA) tools/ringo-gdb.py '$(DESTDIR)$(gdbautoloaddir)/'$$so-gdb.py" && \
	$(INSTALL_DATA) "$(srcdir)/tools/ringo-gdb.py" "$(DESTDIR)$(gdbautoloaddir)/$$so-gdb.py"

uninstall-local:
	@$(RINGO_SO_NAME); rm -f "$(DESTDIR)$(gdbautoloaddir)/$$so-gdb.py"
