# sched/debug/local.mk: observability — goroutine dumps, the deadlock report, the monitor thread
# (RINGO_DEBUG=schedtrace,hog,sigquit), the symbolizer behind ringo_dump (tools/ringo-gdb.py is
# installed by tests/debug.mk).
libringo_internal_la_SOURCES += \
	%reldir%/debug.h \
	%reldir%/hooks.c \
	%reldir%/dump.c \
	%reldir%/deadlock.c \
	%reldir%/stats.c \
	%reldir%/monitor.c \
	%reldir%/symbolize.c
