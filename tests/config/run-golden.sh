#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Golden tests of the configuration language.
#
#   run-golden.sh DVIPAD CONFIGDIR EXAMPLE_CONF
#
# For every CONFIGDIR/NAME.conf:
#   NAME.ok   expected stdout of "dvipad -nv -f NAME.conf" (exit 0, no stderr);
#             NAME.ok itself must then print as itself (the normalized form
#             is a fixed point).
#   NAME.err  expected stderr of "dvipad -n -f NAME.conf" (exit 1, no stdout).
# dvipad runs inside CONFIGDIR with the bare file name, so that the file names
# in error lines do not depend on where the tree is. EXAMPLE_CONF must pass
# "dvipad -n" and round-trip too.
#
# To regenerate after an intended change, review the diff this prints:
#   cd tests/config && dvipad -nv -f NAME.conf > NAME.ok
#   cd tests/config && dvipad -n -f NAME.conf 2> NAME.err

set -u

if [ $# -ne 3 ]; then
	echo "usage: $0 DVIPAD CONFIGDIR EXAMPLE_CONF" >&2
	exit 2
fi
dvipad=$1
dir=$2
example=$3
case $dvipad in /*) ;; *) dvipad=$PWD/$dvipad ;; esac
case $example in /*) ;; *) example=$PWD/$example ;; esac

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

pass=0
fail=0

ok() {
	pass=$((pass + 1))
	echo "ok   $1"
}

# not_ok CASE REASON [FILE-TO-SHOW...]
not_ok() {
	fail=$((fail + 1))
	echo "FAIL $1: $2"
	shift 2
	for f in "$@"; do
		[ -s "$f" ] && sed 's/^/    /' "$f"
	done
	return 0
}

# expect_ok CASE INPUT EXPECTED: "dvipad -nv -f INPUT" prints EXPECTED.
expect_ok() {
	"$dvipad" -nv -f "$2" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne 0 ]; then
		not_ok "$1" "exit $rc, expected 0" "$tmp/err"
	elif ! diff -u "$3" "$tmp/out" >"$tmp/diff"; then
		not_ok "$1" "normalized output differs" "$tmp/diff"
	elif [ -s "$tmp/err" ]; then
		not_ok "$1" "unexpected stderr" "$tmp/err"
	else
		ok "$1"
	fi
}

cd "$dir" || exit 2
for conf in *.conf; do
	[ -e "$conf" ] || continue
	name=${conf%.conf}
	if [ -f "$name.ok" ] && [ -f "$name.err" ]; then
		not_ok "$name" "both $name.ok and $name.err exist"
	elif [ -f "$name.ok" ]; then
		expect_ok "$name" "$conf" "$name.ok"
		expect_ok "$name (round trip)" "$name.ok" "$name.ok"
	elif [ -f "$name.err" ]; then
		"$dvipad" -n -f "$conf" >"$tmp/out" 2>"$tmp/err"
		rc=$?
		if [ $rc -ne 1 ]; then
			not_ok "$name" "exit $rc, expected 1" "$tmp/out" "$tmp/err"
		elif ! diff -u "$name.err" "$tmp/err" >"$tmp/diff"; then
			not_ok "$name" "error output differs" "$tmp/diff"
		elif [ -s "$tmp/out" ]; then
			not_ok "$name" "unexpected stdout" "$tmp/out"
		else
			ok "$name"
		fi
	else
		not_ok "$name" "neither $name.ok nor $name.err"
	fi
done

# The shipped example: valid, silent with -n, and its normalized form is a
# fixed point (its NODE defaults to the host name, so no fixed .ok).
"$dvipad" -n -f "$example" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -ne 0 ]; then
	not_ok "example" "exit $rc, expected 0" "$tmp/err"
elif [ -s "$tmp/out" ] || [ -s "$tmp/err" ]; then
	not_ok "example" "-n printed something" "$tmp/out" "$tmp/err"
else
	ok "example"
fi
if "$dvipad" -nv -f "$example" >"$tmp/example.ok" 2>"$tmp/err"; then
	expect_ok "example (round trip)" "$tmp/example.ok" "$tmp/example.ok"
else
	not_ok "example (round trip)" "-nv failed" "$tmp/err"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
