# examples/io.mk: the servers (one goroutine per connection). -no-install: run in place without a
# libtool wrapper, so tests/test_io can exec them, even from parallel test runs.
noinst_PROGRAMS += %reldir%/echo_server %reldir%/http_server
%canon_reldir%_echo_server_SOURCES = %reldir%/echo_server.c
%canon_reldir%_echo_server_LDADD = libringo.la
%canon_reldir%_echo_server_LDFLAGS = $(AM_LDFLAGS) -no-install
%canon_reldir%_http_server_SOURCES = %reldir%/http_server.c
%canon_reldir%_http_server_LDADD = libringo.la
%canon_reldir%_http_server_LDFLAGS = $(AM_LDFLAGS) -no-install
if HAVE_OPENSSL
# TLS over ringo's I/O (OpenSSL with SSL_set_fd and ringo_poll); only when configure found it
noinst_PROGRAMS += %reldir%/https_server
%canon_reldir%_https_server_SOURCES = %reldir%/https_server.c
%canon_reldir%_https_server_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
%canon_reldir%_https_server_LDADD = libringo.la $(OPENSSL_LIBS)
%canon_reldir%_https_server_LDFLAGS = $(AM_LDFLAGS) -no-install
endif
EXTRA_DIST += %reldir%/https_server.c
