# examples/local.mk: fragment of the top Makefile.am — the programs of the text our users learn
# goroutines and channels from (../shared/seed), in ringo. Each links libringo.la exactly as a
# user program would. tests/test_examples runs them and checks their output (against
# %reldir%/<name>.expected where Go's output is unique, by a checker where Go's scheduler may
# choose). The deadlock examples are the seed's own variations, built from the same files:
# buffered.c with a buffer of 1 and 0, fibonacci.c without close(ch).
CHAN_EXAMPLES = \
	%reldir%/say \
	%reldir%/sum \
	%reldir%/buffered \
	%reldir%/fibonacci \
	%reldir%/deadlock_cap1 \
	%reldir%/deadlock_cap0 \
	%reldir%/deadlock_noclose
noinst_PROGRAMS += $(CHAN_EXAMPLES)
EXTRA_DIST += \
	%reldir%/say_procs1.expected \
	%reldir%/buffered.expected \
	%reldir%/fibonacci.expected \
	%reldir%/deadlock_cap1.expected \
	%reldir%/deadlock_cap0.expected \
	%reldir%/deadlock_noclose.expected

%canon_reldir%_say_SOURCES = %reldir%/say.c
%canon_reldir%_say_LDADD = libringo.la
%canon_reldir%_sum_SOURCES = %reldir%/sum.c
%canon_reldir%_sum_LDADD = libringo.la
%canon_reldir%_buffered_SOURCES = %reldir%/buffered.c
%canon_reldir%_buffered_LDADD = libringo.la
%canon_reldir%_fibonacci_SOURCES = %reldir%/fibonacci.c
%canon_reldir%_fibonacci_LDADD = libringo.la
# "将buff值修改为0，1都会" (deadlock): buffered.c with make(chan int, 1) and make(chan int, 0)
%canon_reldir%_deadlock_cap1_SOURCES = %reldir%/buffered.c
%canon_reldir%_deadlock_cap1_CPPFLAGS = $(AM_CPPFLAGS) -DBUFF=1
%canon_reldir%_deadlock_cap1_LDADD = libringo.la
%canon_reldir%_deadlock_cap0_SOURCES = %reldir%/buffered.c
%canon_reldir%_deadlock_cap0_CPPFLAGS = $(AM_CPPFLAGS) -DBUFF=0
%canon_reldir%_deadlock_cap0_LDADD = libringo.la
# "如果去除close(ch)，也将会dead lock": fibonacci.c without close(ch)
%canon_reldir%_deadlock_noclose_SOURCES = %reldir%/fibonacci.c
%canon_reldir%_deadlock_noclose_CPPFLAGS = $(AM_CPPFLAGS) -DNO_CLOSE
%canon_reldir%_deadlock_noclose_LDADD = libringo.la
