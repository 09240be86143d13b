#!/bin/bash
# What "meson install" gives an operator, checked in a throwaway DESTDIR:
# programs, library with its pkg-config file and header, man pages, the
# systemd unit naming the installed paths, the example configuration where
# dvipad looks by default (and an edited one kept on reinstall). Then a
# program is built against the installed header and library, and the unit
# is checked by systemd-analyze (verify, and security: its exposure).
# Usage: check-install.sh [BUILDDIR] (default $BUILD, else build-test).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-${BUILD:-build-test}}

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() {
	echo "check-install: $*" >&2
	exit 1
}

# The build's directories, absolute (meson keeps most relative to prefix).
sbindir="" bindir="" libdir="" includedir="" mandir="" sysconfdir="" sanitize=""
eval "$(meson introspect --buildoptions "$BUILD" | python3 -c '
import json, os, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
for k in ("sbindir", "bindir", "libdir", "includedir", "mandir", "sysconfdir"):
    print("%s=%s" % (k, os.path.join(o["prefix"], o[k])))
print("sanitize=%s" % o["b_sanitize"])')"

DESTDIR=$dest meson install -C "$BUILD" --no-rebuild --quiet >/dev/null
conf=$sysconfdir/dvipa/dvipa.conf
for f in "$sbindir/dvipad" "$bindir/dvipactl"; do
	[ -x "$dest$f" ] || fail "$f not installed or not executable"
done
for f in "$libdir/libdvipa.so.0" "$libdir/libdvipa.so" "$libdir/libdvipa-preload.so" \
	"$libdir/pkgconfig/libdvipa.pc" "$includedir/dvipa.h" "$conf" \
	"$mandir/man8/dvipad.8" "$mandir/man8/dvipactl.8" "$mandir/man5/dvipa.conf.5" \
	"$mandir/man3/libdvipa.3" "$mandir/man8/libdvipa-preload.8" \
	"$(dirname "$mandir")/bash-completion/completions/dvipactl"; do
	[ -f "$dest$f" ] || fail "$f not installed"
done
unit=$(find "$dest" -path '*/systemd/system/dvipad.service')
[ -n "$unit" ] || fail "dvipad.service not installed"

# The installed daemon's default is the installed configuration, and that
# configuration is valid.
grep -qF "(default $conf)" <<<"$("$dest$sbindir/dvipad" --help)" || fail "dvipad --help does not name $conf as default"
"$dest$sbindir/dvipad" -n -f "$dest$conf" || fail "the installed $conf does not parse"
LD_LIBRARY_PATH="$dest$libdir" "$dest$bindir/dvipactl" --version >/dev/null

# A reinstall keeps what the administrator wrote.
echo "# edited" >>"$dest$conf"
DESTDIR=$dest meson install -C "$BUILD" --no-rebuild --quiet >/dev/null
grep -q '^# edited$' "$dest$conf" || fail "a reinstall overwrote $conf"

# A client built with the installed pkg-config file, header and library
# (with the build's sanitizers: the library carries them).
flags=$(PKG_CONFIG_LIBDIR="$dest$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs libdvipa)
san=""
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"
# shellcheck disable=SC2086
cc -Wall -Werror $san -o "$dest/holder" examples/dvipa-holder.c $flags
LD_LIBRARY_PATH="$dest$libdir" "$dest/holder" --version >/dev/null || fail "a client of the installed libdvipa does not run"

# The unit as installed, its paths moved into DESTDIR so that systemd-analyze
# finds the programs and man pages it names.
sed "s|=$sbindir/|=$dest$sbindir/|g; s|$conf|$dest$conf|g" "$unit" >"$dest/dvipad.service"
grep -q "^ExecStart=$dest$sbindir/dvipad " "$dest/dvipad.service" || fail "the unit does not start $sbindir/dvipad"
MANPATH=$dest$mandir systemd-analyze verify "$dest/dvipad.service" || fail "systemd-analyze verify failed"
# The sandbox: exposure 2.3 at most (dist/dvipad.service.in says what
# remains and why; the threshold is in tenths).
systemd-analyze security --offline=yes --threshold=23 "$dest/dvipad.service" >"$dest/security" ||
	fail "the unit's exposure rose above 2.3: $(tail -n 1 "$dest/security")"
tail -n 1 "$dest/security"
echo "check-install: ok (${unit#"$dest"})"
