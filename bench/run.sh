#!/bin/bash
# dvipa benchmark harness: prints a table of figures (not a test).
# Builds an optimized dvipad (no sanitizers), starts it in a network
# namespace plugged into a bridge, and measures with bench/dvipa-bench:
#   activation latency (request -> address usable), p50/p99 over 1000
#   first activation of a new address (includes the duplicate probe), over 20
#   local standby takeover after kill -9 of the holder, p50/p99 over 50
#   10,000 VIPAs from one client: total time, daemon RSS
#   control-socket requests per second
#   bind() through the preload shim until the address is usable, over 200
#   BINDWATCH detection delay and last-socket-to-removal delay, over 100
#   extra cost of the preload shim per call outside every range
# A measurement that fails (exits non-zero, prints nothing or takes longer
# than STEP_TIMEOUT) prints "NAME: failed (...)" in its place and is counted
# on the last line; dvipad is restarted and the next one runs.
#
# Environment: N_ACT, N_TAKEOVER, N_MANY, N_SHIMBIND, N_BINDWATCH (counts),
# STEP_TIMEOUT (seconds one measurement may take, default 600), ONLY (the
# name of one measurement to make, the others skipped: ONLY=bindwatch), BUILD
# (a build directory to use as it is; default build-bench, made here).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
./scripts/install-deps.sh || setup_failed "scripts/install-deps.sh failed"
bench_build build-bench disabled
require "$B/dvipad" "$B/dvipactl" "$B/dvipa-bench" "$B/preload-bench" "$B/libdvipa-preload.so"

N_ACT=${N_ACT:-1000}
N_TAKEOVER=${N_TAKEOVER:-50}
N_MANY=${N_MANY:-10000}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}

pid=
bench_lan dvbench

# start_dvipad EXTRA_RANGE: (re)start dvipad with 198.18.0.0/16 and
# EXTRA_RANGE; 1 if it does not answer within 5 s.
started() { ip netns exec $P-host "$B/dvipactl" -S "$TMP/sock" status; }
start_dvipad() {
	RANGE=$1
	if [ -n "$pid" ]; then { kill "$pid" && wait "$pid"; } 2>/dev/null || true; fi
	# A killed dvipad leaves its addresses: start from the host's own.
	lan_reset $P host=192.0.2.1 || return 1
	cat > "$TMP/dvipa.conf" <<CONF
NODE bench
INTERFACE eth0
VIPADYNAMIC
  VIPARANGE DEFINE 198.18.0.0/16
  $1
ENDVIPADYNAMIC
CONF
	rm -f "$TMP/sock"
	ip netns exec $P-host "$B/dvipad" -d -f "$TMP/dvipa.conf" -S "$TMP/sock" 2>>"$TMP/log" &
	pid=$!
	wait_for 5 started || { echo "dvipad did not start: $(tail -5 "$TMP/log")" >&2; return 1; }
}

# step [-i] NAME PROGRAM...: one measurement; its output (indented with
# -i), or "NAME: failed" and a restart of dvipad (same ranges). STEP_OK is
# 1 if it succeeded.
fails=0 steps=0 STEP_OK=
failed() { # failed NAME WHY: a measurement that cannot be made
	steps=$((steps + 1)) fails=$((fails + 1))
	echo "$1: failed ($2)"
}
step() {
	local indent='' name out rc=0
	[ "$1" != -i ] || { indent="  "; shift; }
	name=$1
	shift
	STEP_OK=1
	[ -z "${ONLY:-}" ] || [ "$name" = "$ONLY" ] || return 0
	steps=$((steps + 1))
	out=$(timeout "$STEP_TIMEOUT" "$@" 2>"$TMP/step.err") || rc=$?
	if [ $rc = 0 ] && [ -n "$out" ]; then
		printf '%s\n' "$out" | sed "s/^/$indent/"
		return 0
	fi
	fails=$((fails + 1)) STEP_OK=0
	if [ $rc = 124 ]; then
		echo "$name: failed (no result within ${STEP_TIMEOUT} s)"
	else
		echo "$name: failed (exit $rc${out:+, printed \"${out//$'\n'/ }\"})"
	fi
	sed 's/^/  /' "$TMP/step.err" >&2
	start_dvipad "$RANGE" || echo "  dvipad does not start again; the next measurement tries" >&2
}
# Programs, not functions: step runs them under timeout.
IN_HOST=(ip netns exec "$P-host")
BENCH=("${IN_HOST[@]}" "$B/dvipa-bench" "$TMP/sock")

echo "dvipa benchmark, $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "dvipad config: PROBE COUNT 2 INTERVAL 100 (defaults), ANNOUNCE COUNT 3 INTERVAL 500"
start_dvipad "" || setup_failed "dvipad does not start"
step activate "${BENCH[@]}" activate "$N_ACT" 198.18.0.1
step fresh "${BENCH[@]}" fresh 20 198.18.1.0
step takeover "${BENCH[@]}" takeover "$N_TAKEOVER" 198.18.2.1
step many "${BENCH[@]}" many "$N_MANY" 198.18.100.0 "$pid"
[ $STEP_OK = 1 ] || failed rss "the daemon of the many is gone"
[ $STEP_OK = 0 ] || step rss awk -v n="$N_MANY" '/VmRSS/ { print "daemon RSS after the " n ": " $2, $3 }' /proc/$pid/status
step rps "${BENCH[@]}" rps 3 198.18.0.1
step shimbind "${IN_HOST[@]}" env LD_PRELOAD="$B/libdvipa-preload.so" DVIPA_SOCKET="$TMP/sock" \
	"$B/dvipa-bench" "$TMP/sock" shimbind "${N_SHIMBIND:-200}" 198.18.3.1
echo "preload shim overhead on addresses outside every range (ns per call):"
step -i preload-bench "${IN_HOST[@]}" "$B/preload-bench" -s "$B/libdvipa-preload.so" -S "$TMP/sock"
# Last, with a BINDWATCH range: it sets ip_nonlocal_bind in the namespace,
# after which every bind() there succeeds.
if start_dvipad "VIPARANGE DEFINE 198.19.0.0/16 BINDWATCH"; then
	step bindwatch "${BENCH[@]}" bindwatch "${N_BINDWATCH:-100}" 198.19.1.1
else
	failed bindwatch "dvipad with a BINDWATCH range does not start"
fi
echo "failed: $fails of $steps measurements"
