#!/bin/bash
# What dvipad's connection index (dvipad(8), a BPF sock_ops program that
# counts each address's TCP connections as they open and close) costs the
# connections of its network namespace: prints figures (not a test).
#
# In a namespace of its own, bench/tcp-rate opens and closes loopback
# connections (CONC at a time, for SECONDS) against its own server, in
# rounds that alternate without and with the index attached (bench/connidx,
# the index alone, as a clustered dvipad attaches it). Each round prints
# connections per second and the connect-to-first-byte p50/p99 (ms); then
# the medians of each. Every connection is two sockets counted up and down.
# After each round with the index, the count left on 127.0.0.1 (0: every
# connection counted down as it closed).
#
# Environment: ROUNDS (default 3), SECS (default 5), CONC (default 8),
# BUILD (a build directory to use as it is; default build-bench, made here).
# Needs root, a cgroup v2 hierarchy, CAP_BPF.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} CONC=${CONC:-8}
bench_build build-bench disabled
NS=dvipa-connidx-$$
TMP=$(mktemp -d)
cleanup() {
	[ -z "${SERVER:-}" ] || kill "$SERVER" 2>/dev/null || true
	[ -z "${IDX:-}" ] || kill "$IDX" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS" || setup_failed "ip netns add"
ip -n "$NS" link set lo up
inns() { in_ns_cgroup2 "$NS" "$@"; }
inns "$B/tcp-rate" serve 7000 s >/dev/null 2>&1 &
SERVER=$!
sleep 0.3

# round NAME: one tcp-rate run; its figures appended to $TMP/NAME
round() {
	inns "$B/tcp-rate" rate 127.0.0.1 7000 "$SECS" "$CONC" |
		awk '{ v[$1] = $2 } END { printf "%s %s %s\n", v["per_second"], v["p50_ms"], v["p99_ms"] }' \
			>>"$TMP/$1"
	printf '  %-12s %s\n' "$1" "$(tail -n 1 "$TMP/$1" | awk '{ printf "%s/s  p50 %s ms  p99 %s ms", $1, $2, $3 }')"
}

for r in $(seq "$ROUNDS"); do
	echo "round $r"
	round without
	mkfifo "$TMP/in"
	inns "$B/connidx" <"$TMP/in" >"$TMP/out" 2>&1 &
	IDX=$!
	exec 3>"$TMP/in"
	until grep -q ready "$TMP/out" 2>/dev/null; do
		kill -0 "$IDX" 2>/dev/null || setup_failed "connidx: $(cat "$TMP/out")"
		sleep 0.05
	done
	round with_index
	# The server closes its end when it reads the client's: give it time.
	sleep 1
	echo 127.0.0.1 >&3
	sleep 0.2
	echo "  left counted on 127.0.0.1: $(awk '$1 == "127.0.0.1" { print $2 }' "$TMP/out")," \
		"open: $(ip netns exec "$NS" ss -Htn state established state close-wait state fin-wait-1 \
			state fin-wait-2 state last-ack state closing | wc -l)"
	exec 3>&-
	wait "$IDX" || true
	IDX=""
	rm -f "$TMP/in"
done
echo
echo "medians over $ROUNDS rounds ($CONC connections at a time, $SECS s each):"
for n in without with_index; do
	sort -n -k1 "$TMP/$n" | awk -v n="$n" '{ c[NR] = $1 } END { m = c[int((NR + 1) / 2)]; printf "  %-12s %s/s", n, m }'
	sort -n -k2 "$TMP/$n" | awk '{ c[NR] = $2 } END { printf "  p50 %s ms", c[int((NR + 1) / 2)] }'
	sort -n -k3 "$TMP/$n" | awk '{ c[NR] = $3 } END { printf "  p99 %s ms\n", c[int((NR + 1) / 2)] }'
done
