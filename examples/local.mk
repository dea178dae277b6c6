# examples/local.mk: fragment of the top Makefile.am — the first Go programs, in ringo.
# Each links libringo.la exactly as a user program would. tests/test_examples runs them and
# compares their output with %reldir%/<name>.expected.
CHAN_EXAMPLES = \
	%reldir%/say \
	%reldir%/sum \
	%reldir%/buffered \
	%reldir%/fibonacci \
	%reldir%/deadlock
noinst_PROGRAMS += $(CHAN_EXAMPLES)
EXTRA_DIST += \
	%reldir%/say.expected \
	%reldir%/say_procs1.expected \
	%reldir%/sum.expected \
	%reldir%/buffered.expected \
	%reldir%/fibonacci.expected \
	%reldir%/deadlock.expected

%canon_reldir%_say_SOURCES = %reldir%/say.c
%canon_reldir%_say_LDADD = libringo.la
%canon_reldir%_sum_SOURCES = %reldir%/sum.c
%canon_reldir%_sum_LDADD = libringo.la
%canon_reldir%_buffered_SOURCES = %reldir%/buffered.c
%canon_reldir%_buffered_LDADD = libringo.la
%canon_reldir%_fibonacci_SOURCES = %reldir%/fibonacci.c
%canon_reldir%_fibonacci_LDADD = libringo.la
%canon_reldir%_deadlock_SOURCES = %reldir%/deadlock.c
%canon_reldir%_deadlock_LDADD = libringo.la
