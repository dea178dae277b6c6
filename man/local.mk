# man/local.mk: fragment of the top Makefile.am — the man pages (roff, section 3), installed by
# `make install` under $(mandir)/man3. man/check-pages.test checks them in `make check`.
# The pages so far: the server calls of issue 13 and the channel deadlines of issue 14; the API
# issue adds one per remaining call.
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
	%reldir%/ringo_init.3 \
	%reldir%/ringo_procs.3 \
	%reldir%/ringo_go.3 \
	%reldir%/ringo_self.3 \
	%reldir%/ringo_num_goroutines.3 \
	%reldir%/ringo_yield.3 \
	%reldir%/ringo_exit.3 \
	%reldir%/ringo_sleep.3 \
	%reldir%/ringo_now.3 \
	%reldir%/ringo_blocking.3 \
	%reldir%/ringo_block_begin.3 \
	%reldir%/ringo_block_end.3 \
	%reldir%/ringo_chan_make.3 \
	%reldir%/ringo_chan_free.3 \
	%reldir%/ringo_chan_len.3 \
	%reldir%/ringo_chan_cap.3 \
	%reldir%/ringo_chan_send.3 \
	%reldir%/ringo_chan_recv.3 \
	%reldir%/ringo_chan_try_send.3 \
	%reldir%/ringo_chan_try_recv.3 \
	%reldir%/ringo_chan_close.3 \
	%reldir%/ringo_select.3 \
	%reldir%/ringo_mutex_lock.3 \
	%reldir%/ringo_mutex_trylock.3 \
	%reldir%/ringo_mutex_unlock.3 \
	%reldir%/ringo_wg_add.3 \
	%reldir%/ringo_wg_done.3 \
	%reldir%/ringo_wg_wait.3 \
	%reldir%/ringo_read.3 \
	%reldir%/ringo_write.3 \
	%reldir%/ringo_recv.3 \
	%reldir%/ringo_send.3 \
	%reldir%/ringo_accept.3 \
	%reldir%/ringo_connect.3 \
	%reldir%/ringo_poll.3 \
	%reldir%/ringo_close.3 \
	%reldir%/ringo_tcp_listen.3 \
	%reldir%/ringo_tcp_dial.3 \
	%reldir%/ringo_stats_get.3 \
	%reldir%/ringo_dump.3
TESTS += %reldir%/check-pages.test
dist_check_SCRIPTS += %reldir%/check-pages.test
