#!/bin/bash
# A distributor's takeover with connections the table moved (issue 12):
# prints figures (not a test). Each round is one run of
# tests/system/test_distribute.py::test_takeover_keeps_connections_the_table_moved
# on real Corosync in namespaces: three nodes, 30 streams through the
# distributed VIPA, n3 quiesced (the table now sends its streams to n1 and
# n2), then the distributor n1 cut off. Per round: streams on n2/n3 kept
# of those open, time until the VIPA is on n2 and until a new connection
# succeeds through it, time until n3's streams were pinned on n2.
#
# Environment: ROUNDS (default 5), DVIPA_BUILD (a build with tests enabled,
# default build-dev; the system tests' own variable). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
ROUNDS=${ROUNDS:-5}
export DVIPA_BUILD=${DVIPA_BUILD:-$PWD/build-dev}
[ -x "$DVIPA_BUILD/dvipad" ] || { echo "dist-takeover.sh: no dvipad in $DVIPA_BUILD (build it first)" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "distributor takeover keeping moved connections, $(nproc) cores, kernel $(uname -r)," \
	"load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds"
fails=0
for r in $(seq "$ROUNDS"); do
	if ! pytest-3 -q -p no:cacheprovider tests/system/test_distribute.py \
		-k test_takeover_keeps_connections_the_table_moved >"$TMP/round.$r" 2>&1; then
		echo "round $r failed: $(grep -m1 -E '^E ' "$TMP/round.$r" || tail -1 "$TMP/round.$r")" >&2
		fails=$((fails + 1))
	fi
done
# The test's figure lines, e.g.
#   ...: streams on n2/n3 kept: 19 of 19 (11 on n3, ...), 11 more were on n1;
#   VIPA on n2 after 1006 ms, first new connection after 1347 ms
#   ...: its streams pinned on the backup n2: 1137 ms
cat "$TMP"/round.* | awk '
  /streams on n2\/n3 kept:/ {
	for (i = 1; i <= NF; i++) {
		if ($i == "kept:") { kept += $(i + 1); open += $(i + 3) }
		if ($i == "on" && $(i + 1) == "n3,") moved += substr($(i - 1), 2)
		if ($i == "VIPA" && $(i + 2) == "n2") vipa[++nv] = $(i + 4)
		if ($i == "connection" && $(i + 1) == "after") first[++nf] = $(i + 2)
	}
  }
  /pinned on the backup n2:/ { pins[++np] = $NF == "ms" ? $(NF - 1) : $NF }
  function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n ? a[int((n + 1) / 2)] : "-"
  }
  END {
	printf "streams kept through the takeover: %d of %d (%.1f%%), %d of them moved by the table\n", kept, open, open ? 100 * kept / open : 0, moved
	printf "median of %d rounds: VIPA on the backup %s ms, first new connection %s ms, moved streams pinned on the backup %s ms after the change\n", nv, med(vipa, nv), med(first, nf), med(pins, np)
  }'
echo "failed rounds: $fails"
