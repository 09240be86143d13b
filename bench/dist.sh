#!/bin/bash
# The distributed VIPA's dataplane against the direct path and HAProxy
# (issue 12): prints a table of figures (not a test). The ruleset is the one
# dvipad loads (dist_rules.c through kernel_nft.c), put in place by
# tests/dist-apply; the traffic is bench/tcp-rate on both ends.
#
#   client c (192.0.2.100)
#        |                        bridge
#   distributor d (192.0.2.1; VIPA 192.0.2.200 on eth0; a target itself)
#   targets t1 t2 t3 (192.0.2.11..13; the VIPA on lo, no ARP for it)
#
#   direct:  c -> 192.0.2.11:8080 (t1's own address, no distributor)
#   dvipa:   c -> VIPA:8080, Maglev over d t1 t2 t3 in d's netdev ingress;
#            replies go straight from the target to the client (DSR)
#   haproxy: c -> 192.0.2.1:8081, Debian's HAProxy in TCP mode on d,
#            round robin over the same four servers
#
# For each path, ROUNDS rounds (default 3) of: new connections for DURATION
# (default 5) with CONC (default 32) at a time (connect, read the server's
# name, close: per second, p50 and p99 of connect-to-name), and bulk
# streams client -> server (STREAMS connections, default 4, Gbit/s). The
# paths take turns within each round. Then the Maglev table itself: each
# target's share of the M slots, and the share of slots that move when one
# of four targets goes (ideal: only its own quarter).
#
# Environment: ROUNDS, DURATION, CONC, STREAMS, BUILD (a build directory with
# tests enabled, default build-dist, made here, release).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
./scripts/install-deps.sh || setup_failed "scripts/install-deps.sh failed"
bench_build build-dist enabled
require "$B/tcp-rate" "$B/tests/dist-apply" "$B/tests/nft-run" haproxy
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONC=${CONC:-32}
STREAMS=${STREAMS:-4}
VIPA=192.0.2.200 PORT=8080 SEED=1592594996 M=65537

P=dvdist$$
TMP=$(mktemp -d)
NSS="br c d t1 t2 t3"
down() {
	set +e
	lan_down "$P" $NSS
	rm -rf "$TMP"
}
trap down EXIT
trap 'exit 130' INT TERM
lan_up "$P" c=192.0.2.100 d=192.0.2.1 t1=192.0.2.11 t2=192.0.2.12 t3=192.0.2.13 ||
	setup_failed "namespaces $P-*"
in_ns() {
	local n=$1
	shift
	ip netns exec "$P-$n" "$@"
}
mac() { in_ns "$1" cat /sys/class/net/eth0/address; }

in_ns d ip addr add "$VIPA/32" dev eth0
for t in t1 t2 t3; do
	for k in all eth0; do
		in_ns "$t" sysctl -qw "net.ipv4.conf.$k.arp_ignore=1" "net.ipv4.conf.$k.arp_announce=2"
	done
	in_ns "$t" ip addr add "$VIPA/32" dev lo
done
# Many short connections from one client: its TIME_WAIT ports are reused.
in_ns c sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65535"
for h in d t1 t2 t3; do
	ip netns exec "$P-$h" "$B/tcp-rate" serve "$PORT" "$h" &
	disown $! # killed at the end: no job report
done
cat >"$TMP/haproxy.cfg" <<CFG
global
	maxconn 8000
defaults
	mode tcp
	timeout connect 2s
	timeout client 30s
	timeout server 30s
frontend f
	bind 192.0.2.1:8081
	default_backend b
backend b
	balance roundrobin
	server d 127.0.0.1:$PORT
	server t1 192.0.2.11:$PORT
	server t2 192.0.2.12:$PORT
	server t3 192.0.2.13:$PORT
CFG
ip netns exec "$P-d" haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
disown $!
listening() { in_ns "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }
for h in d t1 t2 t3; do wait_for 10 listening "$h" "$PORT" || setup_failed "no server on $h"; done
wait_for 10 listening d 8081 || setup_failed "haproxy: $(tail -3 "$TMP/haproxy.log")"

targets=(d=local)
for t in t1 t2 t3; do targets+=("$t=ether:eth0:$(mac "$t"):$(mac d)"); done
in_ns d "$B/tests/dist-apply" --table eth0 "$VIPA" "$PORT" "$SEED" "$M" "${targets[@]}" >"$TMP/table4" ||
	setup_failed "dist-apply"

declare -A ADDR=([direct]=192.0.2.11:$PORT [dvipa]=$VIPA:$PORT [haproxy]=192.0.2.1:8081)
PATHS="direct dvipa haproxy"
val() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
served() { awk '$1 == "served" { printf "%s%s %s", sep, $2, $3; sep = ", " }' "$1"; }
failures() { awk '$1 ~ /^failed_/ { n += $2 } END { print n + 0 }' "$1"; }

echo "distributed VIPA dataplane vs direct and HAProxy, $(nproc) cores, kernel $(uname -r)," \
	"load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "rounds $ROUNDS, ${DURATION} s each, $CONC connections at a time, $STREAMS streams"
# The pins in the map, every 5 s while dvipa's connections run: a closed
# connection's pin goes 10 s after the client's FIN or RST, so the count
# levels off at about the rate times 10 s instead of growing until full.
pin_count() { echo "list map netdev dvipa s0_vcrt" | in_ns d "$B/tests/nft-run" | grep -o expires | wc -l; }
sample_pins() {
	local t0=$SECONDS
	while :; do
		echo "$((SECONDS - t0)) $(pin_count)"
		sleep 5
	done
}
fails=0
for r in $(seq "$ROUNDS"); do
	for p in $PATHS; do
		a=${ADDR[$p]}
		sampler=
		if [ "$p" = dvipa ]; then
			sample_pins >"$TMP/pincount.$r" &
			sampler=$!
		fi
		if ! in_ns c "$B/tcp-rate" rate "${a%:*}" "${a##*:}" "$DURATION" "$CONC" >"$TMP/rate.$p.$r"; then
			round_failed "rate $p round $r"
			fails=$((fails + 1))
		fi
		[ -z "$sampler" ] || kill "$sampler"
		if ! in_ns c "$B/tcp-rate" stream "${a%:*}" "${a##*:}" "$DURATION" "$STREAMS" >"$TMP/stream.$p.$r"; then
			round_failed "stream $p round $r"
			fails=$((fails + 1))
		fi
	done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
printf '\n%-8s %12s %9s %9s %9s %10s  %s\n' path "conn/s" "p50 ms" "p99 ms" failures "Gbit/s" \
	"connections served (last round)"
for p in $PATHS; do
	rate=$(for r in $(seq "$ROUNDS"); do val per_second "$TMP/rate.$p.$r"; done | median)
	p50=$(for r in $(seq "$ROUNDS"); do val p50_ms "$TMP/rate.$p.$r"; done | median)
	p99=$(for r in $(seq "$ROUNDS"); do val p99_ms "$TMP/rate.$p.$r"; done | median)
	gbit=$(for r in $(seq "$ROUNDS"); do val gbit_per_second "$TMP/stream.$p.$r"; done | median)
	nf=0
	for r in $(seq "$ROUNDS"); do nf=$((nf + $(failures "$TMP/rate.$p.$r") + $(failures "$TMP/stream.$p.$r"))); done
	printf '%-8s %12s %9s %9s %9s %10s  %s\n' "$p" "$rate" "$p50" "$p99" "$nf" "$gbit" \
		"$(served "$TMP/rate.$p.$ROUNDS")"
done
echo "(medians over the rounds; p50/p99 are each round's, connect to the server's first line)"

echo "list map netdev dvipa s0_vcrt" | in_ns d "$B/tests/nft-run" >"$TMP/pins"
echo "pins in the map (size $(awk '$1 == "size" { print $2 }' "$TMP/pins"), timeout" \
	"$(awk '$1 == "timeout" { print $2 }' "$TMP/pins"), 10 s after a FIN or RST) during dvipa's" \
	"connections, every 5 s, last round: $(awk '{ printf "%s%s", sep, $2; sep = " " }' "$TMP/pincount.$ROUNDS");" \
	"highest of all rounds: $(cat "$TMP"/pincount.* | awk '$2 > m { m = $2 } END { print m + 0 }');" \
	"after the run: $(grep -o expires "$TMP/pins" | wc -l)"

# The table: shares of the slots, and what one target's loss moves.
in_ns d "$B/tests/dist-apply" --table eth0 "$VIPA" "$PORT" "$SEED" "$M" "${targets[@]:0:3}" >"$TMP/table3" ||
	setup_failed "dist-apply (three targets)"
echo
echo "Maglev, M $M: slots per target, four targets: $(awk '{ n[$2]++ } END { for (t in n) printf "%s %.2f%%  ", t, 100 * n[t] / NR }' "$TMP/table4")"
paste "$TMP/table4" "$TMP/table3" | awk -v gone=t3 '
	$2 != gone { kept++; if ($2 != $4) moved++ }
	END { printf "t3 removed: %.3f%% of the other targets'"'"' slots moved (ideal 0)\n", 100 * moved / kept }'
echo "failed rounds: $fails"
