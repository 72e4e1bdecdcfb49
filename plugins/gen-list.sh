#!/bin/sh
# gen-list.sh LIST > list.mk — the automake fragment for every plugin in
# plugins/plugins.list: automake cannot loop, so the three per-target lines of
# each plugin are written here instead of by hand. Run by ./bootstrap.
set -e
list=${1:-plugins/plugins.list}
awk '
function fail(msg) { printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; bad = 1; exit 1 }
/^[ \t]*(#|$)/ { next }
{
  if (NF < 1 || NF > 2) fail("expected KIND/NAME [HELPER], found: " $0)
  n = split($1, part, "/")
  if (n != 2 || part[1] !~ /^[a-z][a-z0-9_]*$/ || part[2] !~ /^[a-z][a-z0-9_]*$/)
    fail("expected KIND/NAME in lower case, found: " $1)
  if (NF == 2 && $2 !~ /^[a-z][a-z0-9_]*$/) fail("bad helper library name: " $2)
  id = part[1] "_" part[2]
  if (id in seen) fail("listed twice: " $1)
  seen[id] = 1
  ids[++count] = id
  src[id] = "plugins/" $1 ".c"
  helper[id] = NF == 2 ? "plugins/lib" $2 ".la " : ""
}
END {
  if (bad) exit 1
  print "# list.mk — generated from plugins/plugins.list by plugins/gen-list.sh; do not edit."
  for (i = 1; i <= count; i++) printf "plugins_LTLIBRARIES += plugins/%s.la\n", ids[i]
  for (i = 1; i <= count; i++) {
    id = ids[i]
    printf "plugins_%s_la_SOURCES = %s\n", id, src[id]
    printf "plugins_%s_la_LDFLAGS = $(PLUGIN_FLAGS)\n", id
    printf "plugins_%s_la_LIBADD = %s$(PLUGIN_LIBS)\n", id, helper[id]
  }
}' "$list"
