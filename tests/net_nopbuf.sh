#!/bin/sh
# tests/net_nopbuf.sh — tests/test_net with RINGO_DISABLE=pbuf_ring: ringo_recv_lend without the
# kernel's provided-buffer ring (a forced fallback; see sched/io/lend.c L4).
RINGO_DISABLE=pbuf_ring
export RINGO_DISABLE
# RINGO_TEST_EMULATOR: qemu-user for a cross build (tests/testutil.h)
exec ${RINGO_TEST_EMULATOR:+"$RINGO_TEST_EMULATOR"} "${top_builddir:-.}/tests/test_net" "$@"
