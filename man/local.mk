# man/local.mk: fragment of the top Makefile.am — the man pages (roff), installed by
# `make install` under $(mandir)/man3 and $(mandir)/man7. man/check-pages.test checks them in
# `make check`: every RINGO_API function of include/ringo.h has a page (its own, a one-line
# ".so man3/X.3" link page named after it, or its name in a page's NAME line); every page in
# man/ is listed here and every page listed here exists; ringo(7), the overview (`man ringo`),
# names every call and every RINGO_* environment variable. A new call: write its page (or add
# its name to a sibling's NAME line, with a link page), list the files here, and name the call
# in ringo.7.
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
	%reldir%/ringo_group_make.3 \
	%reldir%/ringo_group_go.3 \
	%reldir%/ringo_group_wait.3 \
	%reldir%/ringo_group_cancel.3 \
	%reldir%/ringo_group_free.3 \
	%reldir%/ringo_canceled.3 \
	%reldir%/ringo_lock_thread.3 \
	%reldir%/ringo_unlock_thread.3 \
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
	%reldir%/ringo_dump.3 \
	%reldir%/ringo_go_opts.3 \
	%reldir%/ringo_set_name.3 \
	%reldir%/ringo_gls_key_create.3 \
	%reldir%/ringo_gls_key_delete.3 \
	%reldir%/ringo_gls_get.3 \
	%reldir%/ringo_gls_set.3 \
	%reldir%/ringo_rwmutex_lock.3 \
	%reldir%/ringo_rwmutex_unlock.3 \
	%reldir%/ringo_rwmutex_rlock.3 \
	%reldir%/ringo_rwmutex_runlock.3 \
	%reldir%/ringo_rwmutex_trylock.3 \
	%reldir%/ringo_rwmutex_tryrlock.3 \
	%reldir%/ringo_cond_wait.3 \
	%reldir%/ringo_cond_wait_until.3 \
	%reldir%/ringo_cond_signal.3 \
	%reldir%/ringo_cond_broadcast.3 \
	%reldir%/ringo_sem_acquire.3 \
	%reldir%/ringo_sem_try_acquire.3 \
	%reldir%/ringo_sem_release.3 \
	%reldir%/ringo_sem_init.3 \
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
dist_man7_MANS = \
	%reldir%/ringo.7
TESTS += %reldir%/check-pages.test
dist_check_SCRIPTS += %reldir%/check-pages.test
