# sched/io.mk: the I/O backend (io_uring, epoll fallback) and the I/O calls of API.md.
# kernel_iface/uring is listed here (not in kernel_iface/local.mk) because this fragment owns it.
libringo_internal_la_SOURCES += \
	kernel_iface/uring.c kernel_iface/uring.h \
	%reldir%/io_backend.h \
	%reldir%/io.c \
	%reldir%/io_uring.c \
	%reldir%/io_epoll.c
