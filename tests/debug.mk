# tests/debug.mk: debugging tools tests
