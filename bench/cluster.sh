#!/bin/bash
# Failover time of dvipa on Corosync, for the comparison with keepalived
# (bench/keepalived.sh; bench/compare.sh runs both). Prints a table (not a
# test).
#
# Topology, network namespaces $P-*, joined by a bridge in $P-br:
#   $P-n1 192.0.2.1, $P-n2 192.0.2.2, $P-n3 192.0.2.3: corosync (knet,
#   votequorum, 3 votes) and dvipad (CLUSTER COROSYNC) on each
#   $P-cl 192.0.2.100: the client, runs bench/tcp-probe
# VIPA 192.0.2.130 in a NONDISRUPTIVE range. The active server is
# dvipa-holder (it holds the VIPA through libdvipa and answers its node's
# name on 8080); a hot standby instance (rank 100) waits on another node.
#
# Measured for two Corosync profiles, N repetitions each (default 20), from
# the event to the first TCP connect from the client to the VIPA answered by
# the standby's node (a connect attempt every 1 ms, each given 100 ms):
#   kill   the active server is killed with SIGKILL
#   cut    the active server's node is cut off (its veth port on the bridge
#          set down, as bench/keepalived.sh does)
# The roles alternate between n1 and n2; n3 is the third vote.
#   mass   4,096 VIPAs (10.77.0.0/20) held by one client on n1 through the
#          API, with standbys for the even ones on n2 and the odd ones on
#          n3; n1 is cut off: time until both standby clients have been
#          granted all of theirs (each grant comes after the address is
#          installed). REPS_MASS repetitions (default 3).
#   big    (not run by default: SCENARIOS=big) BIG VIPAs (default 65,536)
#          of a ROUTED range (10.80.0.0/15, added to every node's
#          configuration when big is asked for) held across the three
#          nodes, a third each (dvipa-bench hold, two clients a node), with
#          a standby client (rank 100) for each half of a node's third on
#          each of the two other nodes; 131,072 registrations in all.
#          REPS_BIG rounds (default 3), each on a fresh cluster, each
#          measuring in turn:
#            cut     n1 (its third) cut off: ms from the survivors' new
#                    membership (the first of n2's and n3's log lines for
#                    the CPG change) and from the cut until the standby
#                    clients on n2 and n3 are granted all of n1's third;
#                    the ring lease makes the survivors wait (docs/
#                    cluster.md) before the first grant
#            rejoin  n1's port up again: ms from its Corosync membership
#                    with the others (its log) until it took the group's
#                    state ("took the group's state (N bytes)"), the
#                    state's size, and the transfer: from the winner's
#                    "sending this node's state" until then
#            join    n1's dvipad killed -9 and started afresh: ms from its
#                    membership until it took the group's state (the
#                    65,536 VIPAs, held on n2 and n3 by then)
#          and the CPU time (user + system) of the dvipads doing the work
#          in each, which the machine's load does not stretch. With
#          DVIPAD_RT=1 the dvipads (and in the cut the standby programs) run
#          SCHED_FIFO 1 for the measured steps
#          only: a host of their own, on a shared machine. PERF=PREFIX:
#          `perf record` (DWARF call graphs) of n2's dvipad during the cut
#          (PREFIX-cut.data) and of n1's during the rejoin
#          (PREFIX-rejoin.data); with PERF_ALL=1 too, of the whole machine
#          (no call graphs).
#          Holding 65,536 and registering their standbys takes about a
#          minute a round here.
# Profiles (totem): shipped = token 400, consensus 480 (dist/corosync-dvipa.conf);
# fast = token 130, consensus 156; both with knet ping 200/600 ms (see
# scripts/corosync-conf.sh for why not shorter).
#
# A round fails when the standby does not register, no answer comes from
# the standby's node within 15 s (60 s for mass; for big: the holds and
# standbys within 300 s, the grants within 60 s), the event cannot be made,
# or the cluster does not come back whole after a heal (30 s); it is counted
# in the "failed" column (its measurement is dropped, so n + failed = N),
# the cluster is restarted (every process killed, ports up, addresses
# flushed, corosync and dvipad started again) and the next round runs. A
# profile whose cluster never forms counts all its rounds as failed.
#
# Environment: N (repetitions), PROFILES (default "shipped fast"), SCENARIOS
# (default "kill cut mass"; also big), REPS_MASS, MASS (number of VIPAs,
# default 4096), REPS_BIG, BIG, DVIPAD_RT, PERF and PERF_ALL (see big),
# HOGS (that many CPU hogs, stress-ng --cpu, run for the whole benchmark: the
# failover under load), DVIPAD_NICE (NICE in the nodes' dvipa.conf: their
# scheduling priority; dvipad's default is 0), KEEP (keep the scratch
# directory), BUILD (a build directory to use as it is; default
# build-bench, made here).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

N=${N:-20}
REPS_MASS=${REPS_MASS:-3}
MASS=${MASS:-4096}
PROFILES=${PROFILES:-"shipped fast"}
SCENARIOS=${SCENARIOS:-"kill cut mass"}
BIG=${BIG:-65536}
REPS_BIG=${REPS_BIG:-3}
BIG_RANGE=
[[ " $SCENARIOS " != *" big "* ]] || BIG_RANGE=$'  VIPARANGE DEFINE 10.80.0.0/15 ROUTED\n'
# 10.80.0.0 + 1 .. BIG must stay in the /15; each of the six clients a
# node needs an address.
[[ $BIG =~ ^[0-9]+$ ]] && [ "$BIG" -ge 6 ] && [ "$BIG" -le 131070 ] || {
	echo "$(basename "$0"): BIG must be 6 to 131070, not '$BIG'" >&2
	exit 1
}
HOGS=${HOGS:-0}
NICE_LINE=
if [ -n "${DVIPAD_NICE:-}" ]; then
	[[ $DVIPAD_NICE =~ ^-?[0-9]+$ ]] || {
		echo "$(basename "$0"): DVIPAD_NICE must be a number, not '$DVIPAD_NICE'" >&2
		exit 1
	}
	NICE_LINE="NICE $DVIPAD_NICE\\n"
fi
VIPA=192.0.2.130
P=dvcb$$
TMP=$(mktemp -d)
NSS="br n1 n2 n3 cl"

. bench/lib.sh
hogs=
cleanup() {
	set +e
	[ -z "$hogs" ] || kill "$hogs" 2>/dev/null
	lan_down $P $NSS
	corosync_shm_clean
	[ -n "${KEEP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

./scripts/install-deps.sh || setup_failed "scripts/install-deps.sh failed"
bench_build build-bench disabled
require corosync "$B/dvipad" "$B/dvipactl" "$B/dvipa-holder" "$B/dvipa-bench"
[ "$HOGS" = 0 ] || require stress-ng
cc -O2 -Wall -Wextra -Werror -o "$TMP/tcp-probe" bench/tcp-probe.c || setup_failed "bench/tcp-probe.c does not build"
PROBE=$TMP/tcp-probe

NODES="n1=192.0.2.1 n2=192.0.2.2 n3=192.0.2.3"
lan_up $P $NODES cl=192.0.2.100 || setup_failed "namespaces $P-*"

# A daemon that hangs must not hang the run.
ctl() { local n=$1; shift; timeout 5 "$B/dvipactl" -S "$TMP/$n.sock" "$@"; }
# From the metrics, not status: with 65,536 VIPAs (big) status --json is
# megabytes, and one that timed out made dvipad drop the client.
quorate() { ctl "$1" metrics | grep -qx 'dvipa_quorate 1'; }
members3() { ctl "$1" metrics | grep -qx 'dvipa_members 3'; }
standby_on() { ctl n3 status --json | tr -d " \n" | grep "\"node_name\":\"$1\",\"client\":[0-9]*,\"rank\"" >/dev/null; }

. scripts/corosync-conf.sh
profile_conf() { # profile_conf NODE PROFILE
	case $2 in
	shipped) set -- "$1" 400 480 ;;
	fast) set -- "$1" 130 156 ;;
	esac
	corosync_conf "$TMP/corosync-$1.conf" "$TMP/corosync-$1.log" dvbench "$2" "$3" \
		192.0.2.1 192.0.2.2 192.0.2.3
}

# start_dvipad NODE: dvipad on NODE, its pid in $TMP/NODE.dvipad
start_dvipad() {
	in_ns_cgroup2 $P-$1 ${START_RT:+chrt -f 1} "$B/dvipad" -d -f "$TMP/$1.conf" -S "$TMP/$1.sock" >/dev/null 2>>"$TMP/dvipad-$1.log" &
	echo $! > "$TMP/$1.dvipad"
	disown $! # killed by kill_in: no job report
}

# start_cluster PROFILE: 1 unless every node is quorate with 3 members
# within 30 s.
start_cluster() {
	local n
	for n in n1 n2 n3; do
		profile_conf $n "$1"
		printf 'NODE %s\nINTERFACE eth0\nCLUSTER COROSYNC GROUP dvipa\n'"$NICE_LINE"'VIPADYNAMIC\n  VIPARANGE DEFINE 192.0.2.128/26\n  VIPARANGE DEFINE 10.77.0.0/20\n%sENDVIPADYNAMIC\n' \
			$n "$BIG_RANGE" > "$TMP/$n.conf"
		corosync_in $P $n "$TMP/corosync-$n.conf"
		start_dvipad $n
	done
	for n in n1 n2 n3; do
		wait_for 30 quorate $n && wait_for 30 members3 $n || return 1
	done
}

stop_cluster() {
	kill_in $P n1 n2 n3
	corosync_shm_clean
	rm -f "$TMP"/*.sock
}

# recover PROFILE: after a failed round, the cluster afresh: every process
# on n1-n3 killed (holders too), ports up, only the node addresses left,
# corosync and dvipad started again. 1 if it does not form.
recover() {
	echo "  restarting the cluster" >&2
	lan_reset $P $NODES || return 1
	corosync_shm_clean
	rm -f "$TMP"/*.sock
	start_cluster "$1"
}

# holder NODE [--standby 100]: a dvipa-holder answering NODE; pid in $TMP/NODE.holder
holder() {
	local n=$1
	shift
	ip netns exec $P-$n "$B/dvipa-holder" -S "$TMP/$n.sock" "$@" --name $n $VIPA 8080 >"$TMP/$n.out" 2>&1 &
	echo $! > "$TMP/$n.holder"
	disown $! # killed on purpose: no job report
}

kill_holder() { kill -9 "$(cat "$TMP/$1.holder")" 2>/dev/null; }
# kill_holders NODE...: what is left of those holders, if anything
kill_holders() {
	local n
	for n in "$@"; do [ ! -f "$TMP/$n.holder" ] || kill_holder $n || true; done
}
cut_node() { ip -n $P-br link set v-$1 down; }
# measure SCENARIO ACTIVE STANDBY: ms from the event until STANDBY answers.
measure() {
	case $1 in
	# The prober sends the SIGKILL and times from it: the shell, behind the
	# CPU hogs (HOGS=2), took 3 to 36 ms between taking the time and the
	# kill (seen on the wire: the prober's first SYN to the old server's
	# RST), counted as failover time.
	kill) PROBE_KILL=$(cat "$TMP/$2.holder") measure_event $P-cl $VIPA "$3" true ;;
	cut) measure_event $P-cl $VIPA "$3" cut_node "$2" ;;
	esac
}

echo "dvipa cluster failover benchmark, $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "$(corosync -v | head -1); 3 nodes; dvipa-holder active + standby rank 100; N=$N"
if [ "$HOGS" != 0 ]; then
	stress-ng --cpu "$HOGS" --quiet >/dev/null 2>&1 &
	hogs=$!
	echo "under load: stress-ng --cpu $HOGS running"
fi
# settle: a heal can make the ring re-form several times (docs/cluster.md,
# "rejoin"); the next round starts only once no dvipad has seen a
# membership change for 1.5 s, so that it measures a cut, not a churn.
settle() {
	local last=-1 now same=0 until=$((${EPOCHREALTIME/./} + 30000000))
	while [ $same -lt 15 ] && [ "${EPOCHREALTIME/./}" -lt $until ]; do
		now=$(cat "$TMP"/dvipad-n*.log | grep -c "corosync: group ")
		if [ "$now" = "$last" ]; then same=$((same + 1)); else same=0 last=$now; fi
		sleep 0.1
	done
}
# owned_by NODE: the VIPA is active on NODE, as n3 sees it
owned_by() { ctl n3 status --json | tr -d " \n" | grep "\"owner_name\":\"$1\"" >/dev/null; }
# ensure_active NODE: NODE's holder owns the VIPA; if a heal took it away
# (see "churn" below), a new holder is started there. Returns 0 if it was
# there, 1 if it had to be started again, 2 if that failed.
ensure_active() {
	if grep -q listening "$TMP/$1.out" && ! grep -q lost "$TMP/$1.out" && owned_by "$1"; then
		return 0
	fi
	kill_holders "$1"
	holder "$1"
	wait_for 10 grep -q listening "$TMP/$1.out" && wait_for 10 owned_by "$1" || return 2
	return 1
}

# heal NODE: NODE's port up again, the cluster whole (NODE quorate, three
# members) and settled; 1 if not within 30 s.
heal() {
	ip -n $P-br link set v-$1 up || return 1
	wait_for 30 quorate $1 && wait_for 30 members3 $1 || return 1
	settle
}

# no_mass NODE: none of the mass VIPAs left on NODE's eth0
no_mass() { [ "$(ip -n $P-$1 -4 addr show dev eth0 | grep -c 'inet 10\.77\.')" = 0 ]; }

# mass_round: one cut of n1 with MASS VIPAs held there; prints the ms; 1 if
# a step failed (the caller restarts the cluster).
mass_round() {
	local t0 g2 g3 n pids rc=0
	rm -f "$TMP"/mass-*.out
	ip netns exec $P-n1 "$B/dvipa-bench" "$TMP/n1.sock" hold "$MASS" 10.77.0.0 1 0 >"$TMP/mass-n1.out" &
	pids=$!
	if wait_for 60 grep -q ready "$TMP/mass-n1.out"; then
		ip netns exec $P-n2 "$B/dvipa-bench" "$TMP/n2.sock" hold $((MASS / 2)) 10.77.0.0 2 0 100 >"$TMP/mass-n2.out" &
		pids="$pids $!"
		ip netns exec $P-n3 "$B/dvipa-bench" "$TMP/n3.sock" hold $((MASS / 2)) 10.77.0.0 2 1 100 >"$TMP/mass-n3.out" &
		pids="$pids $!"
		wait_for 60 grep -q ready "$TMP/mass-n2.out" && wait_for 60 grep -q ready "$TMP/mass-n3.out" || rc=1
	else
		rc=1
	fi
	if [ $rc = 0 ]; then
		sleep 0.5
		t0=$(date +%s%N)
		cut_node n1
		if wait_for 60 grep -q granted_all "$TMP/mass-n2.out" && wait_for 60 grep -q granted_all "$TMP/mass-n3.out"; then
			g2=$(awk '/granted_all/ { print $2 }' "$TMP/mass-n2.out")
			g3=$(awk '/granted_all/ { print $2 }' "$TMP/mass-n3.out")
			echo $(((g2 > g3 ? g2 : g3) - t0)) | awk '{ printf "%.1f\n", $1 / 1e6 }'
		else
			rc=1
		fi
	fi
	heal n1 || rc=1
	{
		kill -9 $pids
		for n in $pids; do wait "$n"; done
	} 2>/dev/null || true
	for n in n1 n2 n3; do wait_for 30 no_mass $n || rc=1; done
	return $rc
}

# ---- big: BIG VIPAs across the three nodes ----

# log_span NODE SKIP START END: "START_MS END_MS LINE" from NODE's dvipad
# log after its first SKIP lines: the first line matching the regular
# expression END, and the last line matching START before it (epoch ms;
# the log says local time to the ms). Nothing if there is no such pair.
log_span() {
	tail -n +$(($2 + 1)) "$TMP/dvipad-$1.log" | awk -v mid="$(date -d 00:00 +%s)" -v a="$3" -v b="$4" '
		function ms(t) { split(t, f, /[:.]/); return mid * 1000 + ((f[1] * 60 + f[2]) * 60 + f[3]) * 1000 + f[4] }
		$0 ~ a { s = ms($1) }
		$0 ~ b && s { printf "%.0f %.0f %s\n", s, ms($1), $0; exit }'
}
# log_first NODE SKIP RE: epoch ms of the first line after SKIP matching RE
log_first() { log_span "$1" "$2" . "$3" | awk '{ print $2 }'; }
# took_since NODE SKIP: NODE's dvipad took the group's state after line SKIP
took_since() { log_span "$1" "$2" . "took the group's state" | grep -q .; }
log_lines() { wc -l < "$TMP/dvipad-$1.log"; }
# rt on|off NODE...: with DVIPAD_RT set, the NODEs' dvipad real-time
# (SCHED_FIFO 1) or back to normal: for the measured steps only, standing
# for a host of its own (the machine is shared).
rt() {
	local how=$1 n
	[ -n "${DVIPAD_RT:-}" ] || return 0
	shift
	for n in "$@"; do
		rt_pid "$how" "$(cat "$TMP/$n.dvipad")"
	done
}
rt_pid() {
	if [ "$1" = on ]; then chrt -f -p 1 "$2"; else chrt -o -p 0 "$2"; fi
}
# cpu_ms NODE: CPU time (user + system) NODE's dvipad has used so far
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1000 / hz }' \
		"/proc/$(cat "$TMP/$1.dvipad")/stat"
}

# big_client NAME NODE COUNT FROM [RANK]: dvipa-bench hold of COUNT
# addresses 10.80.0.0 + FROM + 6i (every other one of a node's third), or a
# standby for them with RANK; its pid is added to $TMP/big.pids.
big_client() {
	ip netns exec $P-$2 "$B/dvipa-bench" "$TMP/$2.sock" hold "$3" 10.80.0.0 "$4" "$5" ${6:-} \
		>"$TMP/big-$1.out" 2>&1 &
	echo $! >> "$TMP/big.pids"
	echo $! > "$TMP/big-$1.pid"
}

# big_round: one round on a fresh cluster; prints "join rejoin
# after_membership after_cut bytes transfer" (ms, bytes); 1 if a step
# failed (the caller restarts the cluster).
#   node k (1..3) holds 10.80.0.0 + k + 3i, i >= 0, up to + BIG: the even i
#   through one client, the odd i through another; the standbys for the
#   even i are on the next node, for the odd i on the one after it.
big_round() {
	local k nx ny c ce co skip1 skip2 skip3 t0 m2 m3 m g span took sent
	local join rejoin aftm aftc bytes xfer c2 c3 c1 cpu_cut cpu_rejoin cpu_join inst instm m
	rm -f "$TMP"/big-*.out "$TMP/big.pids"
	for k in 1 2 3; do
		c=$(((BIG - k) / 3 + 1)) ce=$(((c + 1) / 2)) co=$((c / 2))
		big_client h$k-e n$k $ce 6 $k
		big_client h$k-o n$k $co 6 $((k + 3))
	done
	for k in h1-e h1-o h2-e h2-o h3-e h3-o; do
		wait_for 300 grep -q ready "$TMP/big-$k.out" || return 1
	done
	echo "  $BIG held ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))" >&2
	for k in 1 2 3; do
		c=$(((BIG - k) / 3 + 1)) ce=$(((c + 1) / 2)) co=$((c / 2))
		nx=$((k % 3 + 1)) ny=$(((k + 1) % 3 + 1))
		big_client s$k-e n$nx $ce 6 $k 100
		big_client s$k-o n$ny $co 6 $((k + 3)) 100
	done
	for k in 1 2 3; do
		for c in e o; do wait_for 300 grep -q ready "$TMP/big-s$k-$c.out" || return 1; done
	done
	echo "  standbys registered ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))" >&2
	settle
	# cut: n1 and its third off; n2 and n3 take it over.
	skip2=$(log_lines n2) skip3=$(log_lines n3)
	perf_on n2 cut
	c2=$(cpu_ms n2) c3=$(cpu_ms n3)
	rt on n2 n3
	# The standby programs too: each reads its 10,923 grants.
	[ -z "${DVIPAD_RT:-}" ] || for k in s1-e s1-o; do rt_pid on "$(cat "$TMP/big-$k.pid")"; done
	t0=${EPOCHREALTIME/./}
	cut_node n1
	wait_for 60 grep -q granted_all "$TMP/big-s1-e.out" && wait_for 60 grep -q granted_all "$TMP/big-s1-o.out" ||
		return 1
	rt off n2 n3
	[ -z "${DVIPAD_RT:-}" ] || for k in s1-e s1-o; do rt_pid off "$(cat "$TMP/big-$k.pid")"; done
	perf_off
	cpu_cut=$(($(cpu_ms n2) - c2 + $(cpu_ms n3) - c3))
	g=$(awk '/granted_all/ { v = $2 > v ? $2 : v } END { printf "%.0f", v / 1e6 }' "$TMP"/big-s1-[eo].out)
	m2=$(log_first n2 "$skip2" "group '[^']*': 2 member") m3=$(log_first n3 "$skip3" "group '[^']*': 2 member")
	[ -n "$m2" ] && [ -n "$m3" ] || return 1
	m=$((m2 < m3 ? m2 : m3))
	aftm=$((g - m)) aftc=$((g - t0 / 1000))
	# dvipad's own part: the last of n1's third put in the set on n2, n3
	inst=$( (tail -n +$((skip2 + 1)) "$TMP/dvipad-n2.log"
		tail -n +$((skip3 + 1)) "$TMP/dvipad-n3.log") |
		awk -v mid="$(date -d 00:00 +%s)" '/added to .ROUTED range/ { split($1, f, /[:.]/)
			v = mid * 1000 + ((f[1] * 60 + f[2]) * 60 + f[3]) * 1000 + f[4]; if (v > x) x = v }
			END { printf "%.0f", x }')
	instm=$((inst - m))
	echo "  cut: membership on n2/n3 +$((m2 - t0 / 1000))/+$((m3 - t0 / 1000)) ms, all installed" \
		"+$((inst - t0 / 1000)) ms, all granted +$aftc ms," \
		"dvipad CPU on n2+n3 $cpu_cut ms (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	# rejoin: n1's port up again; it takes the group's state.
	skip1=$(log_lines n1) skip2=$(log_lines n2) skip3=$(log_lines n3)
	perf_on n1 rejoin
	c1=$(cpu_ms n1)
	rt on n1 n2 n3
	heal n1 || return 1
	rt off n1 n2 n3
	cpu_rejoin=$(($(cpu_ms n1) - c1))
	perf_off
	span=$(log_span n1 "$skip1" "group '[^']*': 3 member" "took the group's state")
	[ -n "$span" ] || return 1
	read -r m took _ <<<"$span"
	rejoin=$((took - m))
	bytes=$(sed -E -n "s/.*took the group's state \(([0-9]+) bytes\).*/\1/p" <<<"$span")
	sent=$( (log_first n2 "$skip2" "sending this node's state"; log_first n3 "$skip3" "sending this node's state") | sort -n | head -1)
	xfer=$((took - ${sent:-took}))
	echo "  rejoin: state ($bytes bytes) $rejoin ms after n1's membership, $xfer ms after the winner sent it;" \
		"dvipad CPU on n1 $cpu_rejoin ms until settled (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	# join: n1's dvipad killed and started again, a fresh member (n1 now
	# holds nothing: its holds went to the standbys).
	kill -9 "$(cat "$TMP/n1.dvipad")" 2>/dev/null || return 1
	wait_for 10 members2 n2 || return 1
	settle
	skip1=$(log_lines n1)
	rt on n2 n3
	START_RT=${DVIPAD_RT:-} start_dvipad n1
	wait_for 30 quorate n1 && wait_for 30 members3 n1 || return 1
	wait_for 10 took_since n1 "$skip1" || true
	rt off n1 n2 n3
	span=$(log_span n1 "$skip1" "group '[^']*': 3 member" "took the group's state")
	[ -n "$span" ] || return 1
	read -r m took _ <<<"$span"
	join=$((took - m))
	cpu_join=$(cpu_ms n1)
	echo "  join: state $join ms after n1's membership: $(sed 's/.*corosync: //' <<<"$span");" \
		"dvipad CPU on n1 $cpu_join ms from its start (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	echo "$join $rejoin $aftm $aftc $bytes $xfer $cpu_cut $cpu_rejoin $cpu_join $instm"
}
# perf_on NODE WHAT: with PERF set, `perf record` of NODE's dvipad into
# PERF-WHAT.data until perf_off, call graphs from DWARF: the release build
# has no frame pointers (2,000 samples a second, tens of MB a step).
# With PERF_ALL=1, the whole machine instead, without call graphs: which
# process had the CPUs (perf report --sort comm,pid).
perf_on() {
	[ -n "${PERF:-}" ] || return 0
	if [ -n "${PERF_ALL:-}" ]; then
		perf record -q -a -F 1999 -o "$PERF-$2.data" >/dev/null 2>>"$TMP/perf.err" &
	else
		perf record -q --call-graph dwarf,16384 -F 2000 -o "$PERF-$2.data" -p "$(cat "$TMP/$1.dvipad")" \
			>/dev/null 2>>"$TMP/perf.err" &
	fi
	echo $! > "$TMP/perf.pid"
	sleep 0.5 # perf attaches
}
# perf_off: also after a failed round (its caller)
perf_off() {
	[ -s "$TMP/perf.pid" ] || return 0
	kill -INT "$(cat "$TMP/perf.pid")" 2>/dev/null || true
	while kill -0 "$(cat "$TMP/perf.pid")" 2>/dev/null; do sleep 0.1; done
	: > "$TMP/perf.pid"
}
members2() { ctl "$1" metrics | grep -qx 'dvipa_members 2'; }

ROWS=()
BIG_ROWS=()
: > "$TMP/none"
for prof in $PROFILES; do
	if ! start_cluster "$prof" && ! recover "$prof"; then
		echo "  $prof: the cluster does not form; all its rounds count as failed" >&2
		for sc in kill cut; do
			ROWS+=("$(printf '%-6s %-8s %s %6d %6d' $sc "$prof" "$(stats "$TMP/none")" "$N" 0)")
		done
		ROWS+=("$(printf '%-6s %-8s %s %6d %6s' mass "$prof" "$(stats "$TMP/none")" "$REPS_MASS" -)")
		stop_cluster
		continue
	fi
	for sc in kill cut; do
		[[ " $SCENARIOS " == *" $sc "* ]] || continue
		: > "$TMP/$sc-$prof"
		fails=0 churn=0
		active=n1 standby=n2
		holder $active
		wait_for 10 grep -q listening "$TMP/$active.out" || true # else ensure_active starts it again
		for i in $(seq "$N"); do
			why='' measured=''
			ensure_active $active && rc=0 || rc=$?
			case $rc in
			1) churn=$((churn + 1)) ;;
			2) why="no holder owns the VIPA on $active" ;;
			esac
			if [ -z "$why" ]; then
				holder $standby --standby 100
				wait_for 10 standby_on $standby || why="the standby on $standby is not registered"
			fi
			if [ -z "$why" ]; then
				sleep "0.$(printf %03d $((RANDOM % 1000)))"
				measured=1
				ms=$(measure $sc $active $standby) || why="no answer from $standby (${ms:-nothing measured})"
			fi
			# Heal; the cut-off node's holder is told LOST (the quorate
			# side gave its address away) and exits.
			if [ $sc = cut ] && [ -n "$measured" ] && ! heal $active; then
				why="${why:+$why; }$active does not rejoin after the cut"
			fi
			if [ -n "$why" ]; then
				fails=$((fails + 1))
				round_failed "$sc $prof round $i: $why"
				recover "$prof" || echo "  the cluster does not form again; the next round tries again" >&2
				active=n1 standby=n2
				holder $active
				wait_for 10 grep -q listening "$TMP/$active.out" || true
				continue
			fi
			echo "$ms" >> "$TMP/$sc-$prof"
			[ $sc = kill ] || kill_holders $active
			tmp=$active active=$standby standby=$tmp
		done
		kill_holders $active $standby
		ROWS+=("$(printf '%-6s %-8s %s %6d %6d' $sc "$prof" "$(stats "$TMP/$sc-$prof")" $fails $churn)")
		echo "  done: $sc $prof: $(tr '\n' ' ' < "$TMP/$sc-$prof")" >&2
		sleep 0.5
	done
	if [[ " $SCENARIOS " == *" mass "* ]]; then
		: > "$TMP/mass-$prof"
		fails=0
		for i in $(seq "$REPS_MASS"); do
			if ms=$(mass_round) && is_ms "$ms"; then
				echo "$ms" >> "$TMP/mass-$prof"
			else
				fails=$((fails + 1))
				round_failed "mass $prof round $i"
				recover "$prof" || echo "  the cluster does not form again; the next round tries again" >&2
			fi
		done
		ROWS+=("$(printf '%-6s %-8s %s %6d %6s' mass "$prof" "$(stats "$TMP/mass-$prof")" $fails -)")
		echo "  done: mass $prof: $(tr '\n' ' ' < "$TMP/mass-$prof")" >&2
	fi
	if [[ " $SCENARIOS " == *" big "* ]]; then
		: > "$TMP/big-$prof"
		fails=0
		for i in $(seq "$REPS_BIG"); do
			# Each round on a fresh cluster: the last one's holders
			# and standbys are spread unevenly by then.
			if [ "$i" -gt 1 ] || [ "$SCENARIOS" != big ]; then
				recover "$prof" || true
			fi
			echo "  big $prof round $i ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
			if line=$(big_round) && [ -n "$line" ]; then
				echo "$line" >> "$TMP/big-$prof"
			else
				fails=$((fails + 1))
				round_failed "big $prof round $i"
			fi
			# recover and stop_cluster kill them too (they run in
			# the namespaces); without them the next start is slow.
			kill -9 $(cat "$TMP/big.pids" 2>/dev/null) 2>/dev/null || true
			perf_off
		done
		for col in 1:join 2:rejoin 3:takeover_after_membership 10:installed_after_membership \
			4:takeover_after_cut 6:transfer \
			7:cpu_takeover_n2+n3 8:cpu_rejoin_n1 9:cpu_join_n1; do
			cut -d' ' -f"${col%%:*}" "$TMP/big-$prof" > "$TMP/col"
			BIG_ROWS+=("$(printf '%-26s %-8s %s %6d' "${col#*:}" "$prof" "$(stats "$TMP/col")" $fails)")
		done
		cut -d' ' -f5 "$TMP/big-$prof" > "$TMP/col"
		BIG_ROWS+=("$(printf '%-26s %-8s %s %6d' state_bytes "$prof" "$(stats "$TMP/col")" $fails)")
		echo "  done: big $prof: $(tr '\n' ';' < "$TMP/big-$prof")" >&2
	fi
	stop_cluster
done

if [ ${#ROWS[@]} -gt 0 ]; then
	printf '\n%-6s %-8s %4s %9s %9s %9s %6s %6s\n' scenario profile n p50_ms p99_ms max_ms failed churn
	printf '%s\n' "${ROWS[@]}"
	echo "mass: $MASS VIPAs held on n1 (API), standbys split over n2 and n3; n1 cut off -> all granted"
	echo "churn: times the new owner's holder had lost its hold when the next round began (the ring"
	echo "re-formed while the cut-off node rejoined and briefly saw the new owner leave too); each round"
	echo "starts after 1.5 s without a membership change"
	echo "failed: rounds with no answer from the standby, a standby not registered or a node that did"
	echo "not rejoin; each was followed by a restart of the cluster"
fi
if [ ${#BIG_ROWS[@]} -gt 0 ]; then
	printf '\nbig: %d VIPAs (ROUTED range), a third held on each node, standbys on the other two\n' "$BIG"
	printf '%-26s %-8s %4s %9s %9s %9s %6s\n' measure profile n p50 p99 max failed
	printf '%s\n' "${BIG_ROWS[@]}"
	echo "(ms; state_bytes in bytes) join: a fresh dvipad on n1, its Corosync membership -> the group's"
	echo "state taken; rejoin: the same after n1's cut is healed; transfer: the winner's send -> taken;"
	echo "takeover: n1 cut off -> n2's and n3's standbys granted all of n1's third, from the first"
	echo "survivor's new membership and from the cut; installed: the last of them in n2's or n3's set"
	echo "(dvipad's own part, from its log); cpu_*: dvipad's CPU time (user + system) in"
	echo "them (rejoin: until the cluster settled; join: from dvipad's start), which the machine's load"
	echo "does not stretch${DVIPAD_RT:+; the dvipads (and the standby programs in the cut) ran SCHED_FIFO 1}"
	[ -z "${DVIPAD_RT:-}" ] || echo "in the measured steps (DVIPAD_RT)"
fi
