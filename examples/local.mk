# examples/ — plugins written as a third party writes them: `make installcheck`
# (which `make distcheck` runs) builds examples/plugins against the INSTALLED
# SDK with pkg-config and uses them from pipelines (examples/plugins/installcheck.sh).
EXTRA_DIST += examples/plugins/Makefile examples/plugins/min_p.c examples/plugins/luma.c \
	examples/plugins/luma_hint.lua examples/plugins/check.lua examples/plugins/installcheck.sh

installcheck-local: installcheck-examples
installcheck-examples:
	MAKE='$(MAKE)' $(SHELL) $(srcdir)/examples/plugins/installcheck.sh '$(srcdir)/examples/plugins' \
	  '$(DESTDIR)$(prefix)' '$(DESTDIR)$(bindir)' '$(DESTDIR)$(libdir)' '$(DESTDIR)$(pkgdatadir)' \
	  '$(DESTDIR)' '$(PKG_CONFIG)'
.PHONY: installcheck-examples
