# examples/local.mk: fragment of the top Makefile.am
