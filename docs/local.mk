# docs/ — the Lua API reference and the tutorials (installed under $(docdir)), and
# the task files they walk through (installed under $(pkgdatadir)/examples).
dist_doc_DATA = docs/architecture.md docs/lua-api.md docs/tutorial-colorization.md docs/scopes.md docs/precision.md
taskexamplesdir = $(pkgdatadir)/examples
dist_taskexamples_DATA = examples/colorization.lua
