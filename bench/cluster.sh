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
# Profiles (totem): shipped = token 400, consensus 480 (dist/corosync-dvipa.conf);
# fast = token 130, consensus 156; both with knet ping 200/600 ms (see
# scripts/corosync-conf.sh for why not shorter).
#
# A round fails when the standby does not register, no answer comes from
# the standby's node within 15 s (60 s for mass), the event cannot be made,
# or the cluster does not come back whole after a heal (30 s); it is counted
# in the "failed" column (its measurement is dropped, so n + failed = N),
# the cluster is restarted (every process killed, ports up, addresses
# flushed, corosync and dvipad started again) and the next round runs. A
# profile whose cluster never forms counts all its rounds as failed.
#
# Environment: N (repetitions), PROFILES (default "shipped fast"), SCENARIOS
# (default "kill cut mass"), REPS_MASS, MASS (number of VIPAs, default 4096),
# HOGS (that many CPU hogs, stress-ng --cpu, run for the whole benchmark: the
# failover under load), KEEP (keep the scratch directory), BUILD (a build
# directory to use as it is; default build-bench, made here).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

N=${N:-20}
REPS_MASS=${REPS_MASS:-3}
MASS=${MASS:-4096}
PROFILES=${PROFILES:-"shipped fast"}
SCENARIOS=${SCENARIOS:-"kill cut mass"}
HOGS=${HOGS:-0}
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
quorate() { ctl "$1" status --json | grep -E '"quorate": *true' >/dev/null; }
members3() { [ "$(ctl "$1" status --json | grep -c '"nodeid"')" -ge 4 ]; } # daemon + 3 members
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

# start_cluster PROFILE: 1 unless every node is quorate with 3 members
# within 30 s.
start_cluster() {
	local n
	for n in n1 n2 n3; do
		profile_conf $n "$1"
		printf 'NODE %s\nINTERFACE eth0\nCLUSTER COROSYNC GROUP dvipa\nVIPADYNAMIC\n  VIPARANGE DEFINE 192.0.2.128/26\n  VIPARANGE DEFINE 10.77.0.0/20\nENDVIPADYNAMIC\n' \
			$n > "$TMP/$n.conf"
		corosync_in $P $n "$TMP/corosync-$n.conf"
		ip netns exec $P-$n "$B/dvipad" -d -f "$TMP/$n.conf" -S "$TMP/$n.sock" 2>>"$TMP/dvipad-$n.log" &
		disown $! # killed by kill_in: no job report
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

ROWS=()
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
	if [[ " $SCENARIOS " != *" mass "* ]]; then
		stop_cluster
		continue
	fi
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
	stop_cluster
done

printf '\n%-6s %-8s %4s %9s %9s %9s %6s %6s\n' scenario profile n p50_ms p99_ms max_ms failed churn
printf '%s\n' "${ROWS[@]}"
echo "mass: $MASS VIPAs held on n1 (API), standbys split over n2 and n3; n1 cut off -> all granted"
echo "churn: times the new owner's holder had lost its hold when the next round began (the ring"
echo "re-formed while the cut-off node rejoined and briefly saw the new owner leave too); each round"
echo "starts after 1.5 s without a membership change"
echo "failed: rounds with no answer from the standby, a standby not registered or a node that did"
echo "not rejoin; each was followed by a restart of the cluster"
