#!/bin/sh
# tests/io_nouring.sh — tests/test_io with RINGO_DISABLE=io_uring (a forced fallback; see sched/io/io.c).
RINGO_DISABLE=io_uring
export RINGO_DISABLE
# RINGO_TEST_EMULATOR: qemu-user for a cross build (tests/testutil.h)
exec ${RINGO_TEST_EMULATOR:+"$RINGO_TEST_EMULATOR"} "${top_builddir:-.}/tests/test_io" "$@"
