# kernel_iface/topology.mk: fragment of the top Makefile.am
# CPUs, NUMA nodes and distances (libnuma, or a sysfs-shaped fixture), and the NUMA policy.
# libnuma comes in through libringo_internal_la_LIBADD = ... $(NUMA_LIBS) in Makefile.am.
libringo_internal_la_SOURCES += %reldir%/topology.c %reldir%/topology.h
