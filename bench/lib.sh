# shellcheck shell=bash
# Helpers shared by the benchmarks (bench/run.sh, bench/keepalived.sh,
# bench/cluster.sh, bench/corosync-stability.sh). measure_event expects
# $TMP (a scratch directory) and $PROBE (bench/tcp-probe, built).
#
# Failures: a benchmark is a series of rounds, and one round that fails (a
# probe that times out, a restore that does not reach the starting state, a
# measurement that prints nothing) must not end the run: the scripts keep
# `set -euo pipefail` for programming errors, but every per-round step is
# tested explicitly (`if ! restore; then fails=$((fails + 1)); recover; fi`),
# and the helpers below return 1 instead of exiting. Only set-up (a missing
# program, namespaces that cannot be created) may end a run, through
# setup_failed.

# setup_failed MESSAGE...: the run cannot start; say why and end it.
setup_failed() {
	echo "$(basename "$0"): cannot set up: $*" >&2
	exit 1
}

# bench_build DIR TESTS: B, the absolute path of the build directory: BUILD
# if set (used as it is), else DIR, set up here as a release build with
# -Dtests=TESTS (enabled or disabled) and brought up to date.
bench_build() {
	if [ -n "${BUILD:-}" ]; then
		B=$(realpath "$BUILD")
		return
	fi
	[ -d "$1" ] || meson setup "$1" --buildtype=release "-Dtests=$2" >/dev/null || setup_failed "meson setup $1"
	ninja -C "$1" >/dev/null || setup_failed "$1 does not build"
	B=$(realpath "$1")
}

# in_ns_cgroup2 NS COMMAND...: COMMAND in network namespace NS, with the
# cgroup v2 hierarchy mounted again: ip netns exec mounts a sysfs of its
# own over /sys, without the cgroup mounts under it, and dvipad's
# connection index (dvipad(8)) needs the hierarchy, as on a host. It execs,
# and sh execs COMMAND, so that a background job's $! is COMMAND's pid (to
# kill, perf or chrt it): call it only in a subshell (a job, a pipeline).
in_ns_cgroup2() {
	local ns=$1
	shift
	exec ip netns exec "$ns" sh -c 'mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null; exec "$@"' sh "$@"
}

# require PROGRAM...: setup_failed unless each PROGRAM is in PATH or an
# executable path.
require() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || setup_failed "'$c' not found"
	done
}

# round_failed WHAT...: log a failed round on stderr (the table counts it).
round_failed() {
	echo "  round failed: $*" >&2
}

# lan_up PREFIX HOST=ADDR...: network namespaces PREFIX-br, with a bridge
# br0, and PREFIX-HOST for each HOST, whose eth0 is on the bridge (port
# v-HOST) with ADDR/24. Returns 1 at the first step that fails.
lan_up() {
	local p=$1 h n
	shift
	ip netns add "$p-br" &&
		ip -n "$p-br" link set lo up &&
		ip -n "$p-br" link add br0 type bridge &&
		ip -n "$p-br" link set br0 up || return 1
	for h in "$@"; do
		n=${h%%=*}
		ip netns add "$p-$n" &&
			ip -n "$p-$n" link set lo up &&
			ip -n "$p-br" link add "v-$n" type veth peer name eth0 netns "$p-$n" &&
			ip -n "$p-br" link set "v-$n" master br0 up &&
			ip -n "$p-$n" addr add "${h#*=}/24" dev eth0 &&
			ip -n "$p-$n" link set eth0 up || return 1
	done
}

# bench_lan NAME: the set-up of a one-host benchmark: a scratch directory
# in TMP, and in P the prefix NAME<pid> of namespaces P-br (the bridge),
# P-host (192.0.2.1) and P-peer (192.0.2.2), all removed on exit.
bench_lan() {
	P=$1$$
	TMP=$(mktemp -d)
	NSS="br host peer"
	trap bench_lan_down EXIT
	trap 'exit 130' INT TERM
	lan_up "$P" host=192.0.2.1 peer=192.0.2.2 || setup_failed "namespaces $P-*"
}
bench_lan_down() {
	set +e
	lan_down "$P" $NSS
	rm -rf "$TMP"
}

# kill_in PREFIX NS...: kill what runs in PREFIX-NS (after SIGTERM and a
# short grace if GRACEFUL is set), and remove the shared memory a killed
# corosync leaves behind (/dev/shm/qb-PID-*: IPC rings; qb-corosync-PID-*:
# its 8 MiB blackbox): it is RAM.
kill_in() {
	local p=$1 n all=''
	shift
	for n in "$@"; do all="$all $(ip netns pids "$p-$n" 2>/dev/null)"; done
	[ -n "${all// /}" ] || return 0
	# The shell's "Killed" job reports are noise here.
	{
		if [ -n "${GRACEFUL:-}" ]; then
			kill $all || true
			sleep 0.2
		fi
		kill -9 $all || true
		for n in $all; do wait "$n" || true; done
	} 2>/dev/null
	shm_clean $all
	return 0
}

# shm_clean PID...: remove what a corosync of that PID left in /dev/shm.
shm_clean() {
	local n
	for n in "$@"; do rm -rf /dev/shm/qb-"$n"-* /dev/shm/qb-corosync-"$n"-*; done
}

# lan_reset PREFIX HOST=ADDR...: the recovery after a failed round: kill
# what runs on each HOST (kill_in, GRACEFUL as set), set its bridge port up
# again (a cut that was not healed) and leave ADDR/24 as the only address on
# its eth0 (a killed daemon leaves its VIPs there). The caller then starts
# its servers again. 1 if a port or an address cannot be set.
lan_reset() {
	local p=$1 h n rc=0
	shift
	for h in "$@"; do kill_in "$p" "${h%%=*}"; done
	for h in "$@"; do
		n=${h%%=*}
		ip -n "$p-br" link set "v-$n" up &&
			ip -n "$p-$n" addr flush dev eth0 &&
			ip -n "$p-$n" addr add "${h#*=}/24" dev eth0 &&
			ip -n "$p-$n" link set eth0 up || rc=1
	done
	return $rc
}

# corosync_in PREFIX NODE CONF: start corosync in PREFIX-NODE, with a /run
# of its own; its pid in COROSYNC_PID and appended to $TMP/corosync.pids,
# because a corosync that died is no longer listed in its namespace and
# kill_in cannot find its shared memory (corosync_shm_clean can).
corosync_in() {
	ip netns exec "$1-$2" unshare -m --propagation private sh -c \
		"mount -t tmpfs none /run && mkdir -p /run/corosync && exec corosync -f -c $3" &
	COROSYNC_PID=$!
	disown "$COROSYNC_PID" # killed on purpose: no job report
	echo "$COROSYNC_PID" >> "$TMP/corosync.pids"
}

# corosync_shm_clean: shm_clean for each corosync started by corosync_in
# that is gone; the living ones stay listed.
corosync_shm_clean() {
	local n live=
	[ -f "$TMP/corosync.pids" ] || return 0
	for n in $(cat "$TMP/corosync.pids"); do
		if kill -0 "$n" 2>/dev/null; then live="$live $n"; else shm_clean "$n"; fi
	done
	printf '%s\n' $live > "$TMP/corosync.pids"
}

# lan_down PREFIX NS...: kill_in, then delete the namespaces.
lan_down() {
	local p=$1 n
	kill_in "$@"
	shift
	for n in "$@"; do ip netns del "$p-$n" 2>/dev/null; done
	return 0
}

# wait_for SECONDS COMMAND...: poll every 10 ms until COMMAND succeeds
# (its output is dropped); 1 and a message on timeout.
wait_for() {
	local until=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	until "$@" >/dev/null 2>&1; do
		if [ "${EPOCHREALTIME/./}" -gt $until ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.01
	done
}

# is_ms VALUE: VALUE is a measurement in ms (what measure_event prints on
# success; tcp-probe prints "timeout" otherwise).
is_ms() {
	[[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]
}

# stats FILE: n p50 p99 max over the numbers in FILE (nearest rank).
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 }
		function rank(p,  r) { r = int(p * NR); if (r < p * NR) r++; return v[r < 1 ? 1 : r] }
		END { if (NR) printf "%4d %9.1f %9.1f %9.1f", NR, rank(0.5), rank(0.99), v[NR];
		      else printf "%4d %9s %9s %9s", 0, "-", "-", "-" }'
}

# measure_event NS ADDR BANNER COMMAND...: start the prober in namespace NS,
# run COMMAND (the event) and print the ms from the event until a connect
# to ADDR:8080 is answered with BANNER. With PROBE_KILL=PID, the prober
# itself sends SIGKILL to PID as the event (tcp-probe -k), timed from the
# signal; COMMAND runs after it (true, if nothing else). The prober is running before the
# event; the event time is taken just before COMMAND. Returns 1 (printing
# what it got, if anything) when the prober does not start, COMMAND fails
# or no answer comes within 15 s.
measure_event() {
	local ns=$1 addr=$2 banner=$3 t0 ms='' pid rc=0
	shift 3
	rm -f "$TMP/pin" "$TMP/pout"
	mkfifo "$TMP/pin" "$TMP/pout" || return 1
	# The prober stands for a client on another host: real-time (FIFO 1),
	# so that CPU hogs on this machine (bench/cluster.sh HOGS) delay the
	# failover it measures, not its own reading of the answer.
	ip netns exec "$ns" chrt -f 1 "$PROBE" -T 15000 ${PROBE_KILL:+-k "$PROBE_KILL"} "$addr" 8080 "$banner" - \
		<"$TMP/pin" >"$TMP/pout" &
	pid=$!
	# Both ends are opened by the shell for the prober before it runs, so
	# these opens do not block even if the prober fails at once.
	exec 5>"$TMP/pin" 6<"$TMP/pout"
	if read -r -u 6 ms && [ "$ms" = ready ]; then
		t0=${EPOCHREALTIME/./}000
		# A prober that died leaves no reader: no SIGPIPE for the subshell.
		if (trap '' PIPE; echo "$t0" >&5) 2>/dev/null; then
			"$@" || { echo "event failed: $*" >&2; rc=1; }
			ms=
			read -r -u 6 ms || true
		else
			rc=1
		fi
	else
		rc=1
	fi
	exec 5>&- 6<&-
	[ $rc = 0 ] || kill "$pid" 2>/dev/null || true
	{ wait "$pid"; } 2>/dev/null || true
	echo "$ms"
	[ $rc = 0 ] && is_ms "$ms"
}
