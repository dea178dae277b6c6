# sched: goroutines and the workers that run them
libringo_internal_la_SOURCES += \
	%reldir%/sched.h \
	%reldir%/poller.h \
	%reldir%/list.h \
	%reldir%/spinlock.h \
	%reldir%/waitq.h \
	%reldir%/arch/arch.h \
	%reldir%/ctx.c \
	%reldir%/runq.c \
	%reldir%/proc.c \
	%reldir%/start.c \
	%reldir%/fatal.c \
	%reldir%/goroutine.c \
	%reldir%/gls.c \
	%reldir%/park.c \
	%reldir%/timer.c \
	%reldir%/sync.c \
	%reldir%/group.c \
	%reldir%/lockthread.c \
	%reldir%/rwmutex.c \
	%reldir%/cond.c \
	%reldir%/sem.c \
	%reldir%/blocking.c \
	%reldir%/sysmon.c
if ARCH_X86_64
libringo_internal_la_SOURCES += %reldir%/arch/switch_x86_64_sysv_elf.S
endif
if ARCH_AARCH64
libringo_internal_la_SOURCES += %reldir%/arch/switch_aarch64_aapcs_elf.S
endif
