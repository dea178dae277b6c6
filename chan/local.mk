# chan: channels and select
libringo_internal_la_SOURCES += %reldir%/chan.c
