# host/data/ — libtaming_data: datasets, the loader, preprocessing by reference library, text, FID/IS.
lib_LTLIBRARIES += host/libtaming_data.la
host_libtaming_data_la_SOURCES = \
	host/data/datasets.c host/data/dataloader.c host/data/text.c host/data/metrics.c \
	host/data/imgproc_internal.h host/data/imgproc_view.c host/data/imgproc_opencv.c \
	host/data/imgproc_albumentations.c host/data/imgproc_pil.c host/data/imgproc_skimage.c \
	host/data/imgproc_maps.c
host_libtaming_data_la_CPPFLAGS = $(AM_CPPFLAGS) $(PNG_CFLAGS) $(JPEG_CFLAGS) $(YAML_CFLAGS) $(ZLIB_CFLAGS) $(BLAS_CFLAGS)
host_libtaming_data_la_LIBADD = host/libtaming.la $(PNG_LIBS) $(JPEG_LIBS) $(YAML_LIBS) $(ZLIB_LIBS) $(BLAS_LIBS) -lm
host_libtaming_data_la_LDFLAGS = -version-info 0:0:0 -no-undefined $(OPENMP_CFLAGS)
