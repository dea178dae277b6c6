# man/local.mk: fragment of the top Makefile.am — the man pages (roff, section 3), installed by
# `make install` under $(mandir)/man3. man/check-pages.test checks them in `make check`.
# The pages so far: the server calls of issue 13, the channel deadlines and the sync calls of
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
	%reldir%/ringo_sem_init.3
TESTS += %reldir%/check-pages.test
dist_check_SCRIPTS += %reldir%/check-pages.test
