#!/bin/bash
# The Debian packages: built with dpkg-buildpackage from a copy of the tree
# (nothing is left in it), checked with lintian (an error fails, warnings are
# printed), unpacked into a throwaway root, and the installed programs run
# from there: dvipad -n on the installed example configuration, dvipactl
# --version. Usage: check-package.sh [OUTDIR] (keeps the .deb files there).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
	echo "check-package: $*" >&2
	exit 1
}

# The tree as it is, committed or not, without build directories.
mkdir "$work/dvipa"
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C "$work/dvipa"
(cd "$work/dvipa" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$work/build.log" 2>&1 ||
	{
		tail -n 40 "$work/build.log"
		fail "dpkg-buildpackage failed"
	}
changes=$(echo "$work"/dvipa_*.changes)
lintian --fail-on error --tag-display-limit 0 "$changes" || fail "lintian reports errors"

root=$work/root
for deb in "$work"/*.deb; do
	dpkg -x "$deb" "$root"
done
for pkg in dvipa libdvipa0 libdvipa-dev libdvipa-preload; do
	ls "$work/${pkg}_"*.deb >/dev/null 2>&1 || fail "no package $pkg"
done

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
export LD_LIBRARY_PATH=$root/usr/lib/$multiarch
for f in /etc/dvipa/dvipa.conf /lib/systemd/system/dvipad.service /usr/share/man/man8/dvipad.8.gz /usr/share/bash-completion/completions/dvipactl \
	/usr/share/man/man3/libdvipa.3.gz /usr/include/dvipa.h /usr/lib/"$multiarch"/libdvipa-preload.so; do
	[ -e "$root$f" ] || fail "$f is in no package"
done
grep -qx /etc/dvipa/dvipa.conf <<<"$(dpkg-deb -I "$work"/dvipa_*.deb conffiles)" || fail "/etc/dvipa/dvipa.conf is not a conffile"
grep -q '^ExecStart=/usr/sbin/dvipad -d -f /etc/dvipa/dvipa.conf$' "$root/lib/systemd/system/dvipad.service" ||
	fail "the packaged unit does not start /usr/sbin/dvipad with /etc/dvipa/dvipa.conf"
grep -qF "(default /etc/dvipa/dvipa.conf)" <<<"$("$root/usr/sbin/dvipad" --help)" || fail "dvipad's default is not /etc/dvipa/dvipa.conf"
"$root/usr/sbin/dvipad" -n -f "$root/etc/dvipa/dvipa.conf" || fail "the installed example configuration does not parse"
"$root/usr/bin/dvipactl" --version || fail "the installed dvipactl does not run"

if [ $# -ge 1 ]; then
	mkdir -p "$1"
	cp "$work"/*.deb "$1"/
fi
echo "check-package: ok ($(cd "$work" && echo *.deb))"
