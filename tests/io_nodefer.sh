#!/bin/sh
# tests/io_nodefer.sh — tests/test_io with RINGO_DISABLE=defer_taskrun (a forced fallback; see sched/io/io.c).
RINGO_DISABLE=defer_taskrun
export RINGO_DISABLE
exec "${top_builddir:-.}/tests/test_io" "$@"
