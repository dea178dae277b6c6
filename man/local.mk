# man/local.mk: fragment of the top Makefile.am — the man pages (roff, section 3), installed by
# `make install` under $(mandir)/man3. man/check-pages.test checks them in `make check`.
# The pages so far: the server calls of issue 13, the channel deadlines and the timer channels of
# issue 14; the API issue adds one per remaining call.
dist_man3_MANS = \
	%reldir%/ringo_sendmsg.3 \
	%reldir%/ringo_recvmsg.3 \
	%reldir%/ringo_sendto.3 \
	%reldir%/ringo_recvfrom.3 \
	%reldir%/ringo_unix_listen.3 \
	%reldir%/ringo_unix_dial.3 \
	%reldir%/ringo_resolve.3 \
	%reldir%/ringo_sendfile.3 \
	%reldir%/ringo_shutdown.3 \
	%reldir%/ringo_recv_lend.3 \
	%reldir%/ringo_buf_release.3 \
	%reldir%/ringo_chan_send_until.3 \
	%reldir%/ringo_chan_recv_until.3 \
	%reldir%/ringo_once.3 \
	%reldir%/ringo_after.3 \
	%reldir%/ringo_timer_make.3 \
	%reldir%/ringo_timer_chan.3 \
	%reldir%/ringo_timer_stop.3 \
	%reldir%/ringo_timer_reset.3 \
	%reldir%/ringo_timer_free.3 \
	%reldir%/ringo_ticker_make.3 \
	%reldir%/ringo_ticker_chan.3 \
	%reldir%/ringo_ticker_stop.3 \
	%reldir%/ringo_ticker_reset.3 \
	%reldir%/ringo_ticker_free.3
TESTS += %reldir%/check-pages.test
dist_check_SCRIPTS += %reldir%/check-pages.test
