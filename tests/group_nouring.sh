#!/bin/sh
# tests/group_nouring.sh — tests/test_group with RINGO_DISABLE=io_uring (a forced fallback: group
# cancels end epoll waits through their claim instead of IORING_OP_ASYNC_CANCEL).
RINGO_DISABLE=io_uring
export RINGO_DISABLE
exec "${top_builddir:-.}/tests/test_group" "$@"
