#!/bin/sh
# tests/io_nodefer.sh — tests/test_io on rings owned by their thread alone and without
# DEFER_TASKRUN: RINGO_DISABLE=ring_handoff,defer_taskrun gives COOP_TASKRUN rings (a forced
# fallback; see sched/io/io.c and kernel_iface/uring.c's chain).
RINGO_DISABLE=ring_handoff,defer_taskrun
export RINGO_DISABLE
# RINGO_TEST_EMULATOR: qemu-user for a cross build (tests/testutil.h)
exec ${RINGO_TEST_EMULATOR:+"$RINGO_TEST_EMULATOR"} "${top_builddir:-.}/tests/test_io" "$@"
