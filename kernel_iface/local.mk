# kernel_iface: thin, goroutine-agnostic wrappers over the kernel
libringo_internal_la_SOURCES += \
	%reldir%/clock.c %reldir%/clock.h \
	%reldir%/futex.c %reldir%/futex.h \
	%reldir%/stackmem.c %reldir%/stackmem.h \
	%reldir%/uring.c %reldir%/uring.h \
	%reldir%/topology.c %reldir%/topology.h \
	%reldir%/cgroup.c %reldir%/cgroup.h
