# examples/io.mk: the servers (one goroutine per connection). -no-install: run in place without a
# libtool wrapper, so tests/test_io can exec them, even from parallel test runs.
noinst_PROGRAMS += %reldir%/echo_server %reldir%/http_server
%canon_reldir%_echo_server_SOURCES = %reldir%/echo_server.c
%canon_reldir%_echo_server_LDADD = libringo.la
%canon_reldir%_echo_server_LDFLAGS = $(AM_LDFLAGS) -no-install
%canon_reldir%_http_server_SOURCES = %reldir%/http_server.c
%canon_reldir%_http_server_LDADD = libringo.la
%canon_reldir%_http_server_LDFLAGS = $(AM_LDFLAGS) -no-install
