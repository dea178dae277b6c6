# sched/io.mk: the I/O backend (io_uring, epoll fallback) and the I/O calls of API.md
libringo_internal_la_SOURCES += %reldir%/io.c
