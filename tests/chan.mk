# tests/chan.mk: fragment of the top Makefile.am
