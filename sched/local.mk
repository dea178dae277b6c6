# sched: goroutines and the workers that run them
libringo_internal_la_SOURCES += \
	%reldir%/sched.h \
	%reldir%/poller.h \
	%reldir%/list.h \
	%reldir%/spinlock.h \
	%reldir%/arch/arch.h \
	%reldir%/arch/switch_x86_64_sysv_elf.S \
	%reldir%/ctx.c \
	%reldir%/runq.c \
	%reldir%/proc.c \
	%reldir%/start.c \
	%reldir%/fatal.c \
	%reldir%/goroutine.c \
	%reldir%/park.c \
	%reldir%/timer.c \
	%reldir%/sync.c \
	%reldir%/blocking.c \
	%reldir%/sysmon.c
