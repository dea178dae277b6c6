#!/bin/sh
# tests/net_nouring.sh — tests/test_net with RINGO_DISABLE=io_uring (a forced fallback; see sched/io/io.c).
RINGO_DISABLE=io_uring
export RINGO_DISABLE
exec "${top_builddir:-.}/tests/test_net" "$@"
