# sched/io/local.mk: the I/O layer — the I/O calls of API.md over io_uring, epoll, or nothing.
libringo_internal_la_SOURCES += \
	%reldir%/io.h \
	%reldir%/io.c \
	%reldir%/fd.c \
	%reldir%/tcp.c \
	%reldir%/unix.c \
	%reldir%/lend.c \
	%reldir%/fdcheck.c \
	%reldir%/poll_uring.c \
	%reldir%/poll_epoll.c \
	%reldir%/poll_none.c
