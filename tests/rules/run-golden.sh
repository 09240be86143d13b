#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Golden tests of the distributed VIPAs' nftables ruleset (dist_rules.c):
#
#   run-golden.sh DIST_RULES_EXAMPLE RULESDIR
#
# For every RULESDIR/NAME.nft: "dist-rules-example NAME" prints it byte for
# byte; RULESDIR/NAME.slots, when there, is "dist-rules-example NAME 0" (the
# slot-map update). To regenerate after an intended change, review the diff:
#   dist-rules-example NAME > NAME.nft; dist-rules-example NAME 0 > NAME.slots
set -u
[ $# -eq 2 ] || { echo "usage: $0 DIST_RULES_EXAMPLE RULESDIR" >&2; exit 2; }
ex=$1
dir=$2
tmp=$(mktemp) || exit 2
trap 'rm -f "$tmp"' EXIT
pass=0
fail=0
for f in "$dir"/*.nft "$dir"/*.slots; do
	[ -e "$f" ] || continue
	name=$(basename "$f")
	case $f in
	*.nft) "$ex" "${name%.nft}" >"$tmp" ;;
	*.slots) "$ex" "${name%.slots}" 0 >"$tmp" ;;
	esac
	if [ $? -ne 0 ]; then
		fail=$((fail + 1))
		echo "FAIL $name: dist-rules-example failed"
	elif ! diff -u "$f" "$tmp"; then
		fail=$((fail + 1))
		echo "FAIL $name: differs"
	else
		pass=$((pass + 1))
		echo "ok   $name"
	fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
