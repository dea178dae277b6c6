# chan: channels and select
#   chan.h    internal shape (struct ringo_chan, struct sudog), shared invariants; never installed
#   ring.c    the buffered lock-free ring and its RWAIT / SWAIT waiter flags
#   chan.c    make / free / len / cap, send / recv / close, the wait queues
#   select.c  ringo_select
#   timechan.c  timers and tickers as channels: ringo_after, ringo_timer_*, ringo_ticker_*
libringo_internal_la_SOURCES += \
	%reldir%/chan.h \
	%reldir%/ring.c \
	%reldir%/chan.c \
	%reldir%/select.c \
	%reldir%/timechan.c
