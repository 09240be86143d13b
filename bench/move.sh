#!/bin/bash
# A NONDISRUPTIVE move with a bulk stream on the address (issue 13): prints
# figures (not a test). Each round is one run of
# tests/system/test_moves.py::test_nondisruptive_move_keeps_a_bulk_stream on
# real Corosync in namespaces: three nodes, the VIPA on n1, an iperf3
# stream from the client to n1 through it; after PHASE seconds of it,
# `dvipactl move VIPA --to n2`, and, once the client sends to n2, PHASE
# seconds of the same stream forwarded by n2 to n1 (n1 serves it from lo,
# MOVING); then the stream ends. Per round:
#   new conn ms   from the move command until a new connection (a connect
#                 every 5 ms, bench/tcp-probe) is answered by n2, while the
#                 stream runs;
#   switch ms     until the client's ARP entry for the VIPA is n2's MAC
#                 (from then on the stream is forwarded);
#   before, fwd   the stream's Gbit/s before the move and while forwarded
#                 (iperf3's 0.5 s intervals; its first one, slow start, and
#                 those across the switch left out), and fwd/before;
#   slowest       the slowest interval across the move and the switch;
#   stream        kept, or LOST (reset, stopped: the test then fails);
#   end ms        from the stream's end until MOVING has ended on every node
#                 and n1 dropped the address from lo.
# Then n, median, p99 and max over the rounds of each column (the ratio in
# per cent), and the streams kept. Both ends of the stream and the forwarding share this
# machine's CPUs: Gbit/s are this machine's, their ratio is the figure.
#
# Environment: ROUNDS (default 5), PHASE (seconds, default 4), DVIPA_BUILD (a
# build with tests enabled, default build-dev; the system tests' own
# variable). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
./scripts/install-deps.sh || setup_failed "scripts/install-deps.sh failed"
ROUNDS=${ROUNDS:-5}
export DVIPA_MOVE_STREAM_SECONDS=${PHASE:-4}
export DVIPA_BUILD=${DVIPA_BUILD:-$PWD/build-dev}
[ -x "$DVIPA_BUILD/dvipad" ] || setup_failed "no dvipad in $DVIPA_BUILD (build it first)"
require iperf3 "$DVIPA_BUILD/tcp-probe"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "NONDISRUPTIVE move with a bulk stream, $(nproc) cores, kernel $(uname -r)," \
	"load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds of ${PHASE:-4} s + ${PHASE:-4} s"
printf '%5s %11s %9s %9s %9s %6s %8s %7s %7s\n' round "new conn ms" "switch ms" before fwd ratio slowest stream "end ms"
fails=0 kept=0
# The test's figure lines, e.g.
#   moves: a bulk stream across a NONDISRUPTIVE move: new connection on n2
#   after 212 ms; client on n2 after 180 ms; stream before 9.81 Gbit/s (8
#   intervals), forwarded 9.02 Gbit/s (11 intervals), ratio 0.92, slowest
#   interval across the move 8.10 Gbit/s; kept
#   moves: MOVING ended after the stream: 1034 ms
re='new connection on n2 after ([0-9]+) ms; client on n2 after ([0-9]+) ms; stream before ([0-9.]+) Gbit/s .*'
re+='forwarded ([0-9.]+) Gbit/s .* ratio ([0-9.]+), slowest interval across the move ([0-9.]+) Gbit/s; (.*)$'
for r in $(seq "$ROUNDS"); do
	out=$TMP/round.$r
	if ! pytest-3 -q -p no:cacheprovider tests/system/test_moves.py \
		-k test_nondisruptive_move_keeps_a_bulk_stream >"$out" 2>&1; then
		round_failed "round $r: $(grep -m1 -E '^E ' "$out" || tail -1 "$out")"
		fails=$((fails + 1))
	fi
	line=$(grep -m1 'a bulk stream across a NONDISRUPTIVE move:' "$out" || true)
	if ! [[ $line =~ $re ]]; then
		printf '%5s %s\n' "$r" "no figures"
		continue
	fi
	m=("${BASH_REMATCH[@]}")
	end=$(sed -n 's/^moves: MOVING ended after the stream: \([0-9]*\) ms$/\1/p' "$out")
	stream=${m[7]%% *}
	[ "$stream" != kept ] || kept=$((kept + 1))
	printf '%5s %11s %9s %9s %9s %6s %8s %7s %7s\n' "$r" "${m[1]}" "${m[2]}" "${m[3]}" "${m[4]}" "${m[5]}" \
		"${m[6]}" "$stream" "${end:--}"
	for i in 1 2 3 4 6; do echo "${m[$i]}" >>"$TMP/col.$i"; done
	awk -v r="${m[5]}" 'BEGIN { print 100 * r }' >>"$TMP/col.5"
	[ -z "$end" ] || echo "$end" >>"$TMP/col.end"
	[ "$stream" = kept ] || echo "  round $r: stream ${m[7]}" >&2
done
echo
printf '%-28s %4s %9s %9s %9s\n' "over the rounds" n median p99 max
names=("" "new connection on n2 (ms)" "client switched (ms)" "before (Gbit/s)" "forwarded (Gbit/s)"
	"forwarded/before (%)" "slowest across (Gbit/s)")
for i in 1 2 3 4 5 6; do
	touch "$TMP/col.$i"
	printf '%-28s %s\n' "${names[$i]}" "$(stats "$TMP/col.$i")"
done
touch "$TMP/col.end"
printf '%-28s %s\n' "MOVING ended (ms)" "$(stats "$TMP/col.end")"
echo "streams kept across the move: $kept of $ROUNDS"
echo "failed rounds: $fails"
