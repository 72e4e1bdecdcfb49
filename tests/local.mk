# tests/ — check suites (one per area) and script tests. Run with `make check`.
if HAVE_CHECK
check_LTLIBRARIES += tests/libtesthelp.la
tests_libtesthelp_la_SOURCES = tests/testhelp.c tests/testhelp.h
tests_libtesthelp_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_libtesthelp_la_LIBADD = host/libtaming.la $(CHECK_LIBS)

TEST_LDADD = tests/libtesthelp.la host/libtaming.la $(CHECK_LIBS) -lm
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

check_PROGRAMS += tests/check_tensor tests/check_autograd tests/check_ops_core
tests_check_tensor_SOURCES = tests/check_tensor.c
tests_check_tensor_CFLAGS = $(TEST_CFLAGS)
tests_check_tensor_LDADD = $(TEST_LDADD)
tests_check_autograd_SOURCES = tests/check_autograd.c
tests_check_autograd_CFLAGS = $(TEST_CFLAGS)
tests_check_autograd_LDADD = $(TEST_LDADD)
tests_check_ops_core_SOURCES = tests/check_ops_core.c
tests_check_ops_core_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_core_LDADD = $(TEST_LDADD)
TESTS += tests/check_tensor tests/check_autograd tests/check_ops_core
endif
AM_TESTS_ENVIRONMENT = TT_SRCDIR='$(abs_top_srcdir)'; TT_BUILDDIR='$(abs_top_builddir)'; \
	TAMING_FIXTURES='$(abs_top_srcdir)/../shared/fixtures'; \
	export TT_SRCDIR TT_BUILDDIR TAMING_FIXTURES; OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2}; export OMP_NUM_THREADS;
# conv and resample families
if HAVE_CHECK
check_PROGRAMS += tests/check_ops_conv
tests_check_ops_conv_SOURCES = tests/check_ops_conv.c
tests_check_ops_conv_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_conv_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_conv
endif
EXTRA_DIST += tests/data/gen_resample.py tests/data/resample/interpolate.txt
