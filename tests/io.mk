# tests/io.mk: I/O tests
