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

# images and the data-pipeline preprocessing (reference data in tests/data/image)
if HAVE_CHECK
check_LTLIBRARIES += tests/libimgtest.la
tests_libimgtest_la_SOURCES = tests/imgtest.c tests/imgtest.h
tests_libimgtest_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_libimgtest_la_LIBADD = tests/libtesthelp.la host/libtaming.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_image tests/check_image_examples
tests_check_image_SOURCES = tests/check_image.c
tests_check_image_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_check_image_LDADD = tests/libimgtest.la $(TEST_LDADD) $(ZLIB_LIBS)
tests_check_image_examples_SOURCES = tests/check_image_examples.c
tests_check_image_examples_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_check_image_examples_LDADD = tests/libimgtest.la $(TEST_LDADD) $(ZLIB_LIBS)
TESTS += tests/check_image tests/check_image_examples
endif
EXTRA_DIST += tests/data/gen_image.py tests/data/image

# IDX / Fashion-MNIST reader
if HAVE_CHECK
check_PROGRAMS += tests/check_datasets
tests_check_datasets_SOURCES = tests/check_datasets.c
tests_check_datasets_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_check_datasets_LDADD = $(TEST_LDADD) $(ZLIB_LIBS)
TESTS += tests/check_datasets
endif
