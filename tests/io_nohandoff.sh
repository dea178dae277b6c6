#!/bin/sh
# tests/io_nohandoff.sh — tests/test_io with RINGO_DISABLE=ring_handoff: rings owned by their
# thread alone (SINGLE_ISSUER + DEFER_TASKRUN), which the sysmon never rescues (a forced
# configuration; see sched/io/poll_uring.c U1).
RINGO_DISABLE=ring_handoff
export RINGO_DISABLE
# RINGO_TEST_EMULATOR: qemu-user for a cross build (tests/testutil.h)
exec ${RINGO_TEST_EMULATOR:+"$RINGO_TEST_EMULATOR"} "${top_builddir:-.}/tests/test_io" "$@"
