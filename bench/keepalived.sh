#!/bin/bash
# Failover time of the peer, keepalived 2.2.7 (Debian) with VRRPv3, for the
# comparison with dvipa (issue 4, item 7). Prints a table (not a test).
#
# Topology, all in network namespaces named $P-*, joined by a bridge in $P-br:
#   $P-ka1  192.0.2.11  keepalived priority 150 (master), TCP server "ka1"
#   $P-ka2  192.0.2.12  keepalived priority 100 (backup), TCP server "ka2"
#   $P-cl   192.0.2.100 the client, runs bench/tcp-probe
# VIP 192.0.2.50/32, unicast VRRPv3, VRID 51. Each server is a socat on
# 0.0.0.0:8080 answering its name; keepalived tracks it the way its users
# do: a vrrp_script (a TCP connect to 127.0.0.1:8080, interval 1 s, the
# minimum, fall 1, rise 1, weight 0 so that a failure puts the instance in
# FAULT and it gives the VIP up at once with a priority-0 advert).
# track_process would be the event-driven alternative, but it cannot work in
# a network namespace (checked below).
#
# Measured for advert_int 1 s and 0.1 s, N repetitions each (default 20),
# from the event to the first TCP connect from the client to the VIP that is
# answered by ka2 (a connect attempt every 1 ms, each given 100 ms):
#   kill   the server on the master (ka1) is killed with SIGKILL
#   cut    the master is cut off: its veth port on the bridge is set down
#          (its own eth0 loses carrier, so ka1 goes to FAULT and drops the
#          VIP; ka2 only sees the adverts stop: 3 x advert_int + skew)
# Between repetitions the original state is restored (server restarted or
# link up, ka1 master again and answering on the VIP), then a random pause
# of 0-1 s decorrelates the event from the script and advert timers.
# A round fails when no answer from ka2 comes within 15 s, the event cannot
# be made, or the restore after it does not reach that state within 20 s;
# it is counted in the "failed" column (its measurement is dropped, so n +
# failed = N), both nodes are reset (keepalived and servers killed, link up,
# VIP removed, all started again) and the next round runs.
# Afterwards three checks: whether track_process works in a namespace,
# whether vrrp_script takes an interval below 1 s, and whether a master
# whose keepalived is killed -9 keeps the VIP.
#
# Environment: N (repetitions), ADVERTS (default "1 0.1"), LOGDIR (keep the
# keepalived configurations and logs there).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

N=${N:-20}
ADVERTS=${ADVERTS:-"1 0.1"}
VIP=192.0.2.50
P=kab$$
TMP=$(mktemp -d)
NSS="br ka1 ka2 cl"
POLICY_CREATED=

declare -A KA

. bench/lib.sh
cleanup() {
	set +e
	GRACEFUL=1 lan_down $P $NSS
	[ -n "$POLICY_CREATED" ] && rm -f /usr/sbin/policy-rc.d
	[ -n "${LOGDIR:-}" ] && mkdir -p "$LOGDIR" && cp "$TMP"/*.conf "$TMP"/*.log "$LOGDIR"/
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites --------------------------------------------------------
need=
command -v keepalived >/dev/null || need="$need keepalived"
command -v socat >/dev/null || need="$need socat"
if [ -n "$need" ] && [ "$(id -u)" = 0 ]; then
	# Installing must not start keepalived as a service on this machine.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		POLICY_CREATED=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y $need >/dev/null || { apt-get update >/dev/null && apt-get install -y $need >/dev/null; }
	if [ -n "$POLICY_CREATED" ]; then rm -f /usr/sbin/policy-rc.d; POLICY_CREATED=; fi
fi
require keepalived socat cc ip
[ "$(id -u)" = 0 ] || setup_failed "network namespaces need root"
cc -O2 -Wall -Wextra -Werror -o "$TMP/tcp-probe" bench/tcp-probe.c || setup_failed "bench/tcp-probe.c does not build"
PROBE=$TMP/tcp-probe

# --- topology -------------------------------------------------------------
declare -A ADDR=([ka1]=192.0.2.11 [ka2]=192.0.2.12 [cl]=192.0.2.100)
lan_up $P ka1=${ADDR[ka1]} ka2=${ADDR[ka2]} cl=${ADDR[cl]} || setup_failed "namespaces $P-*"

has_vip() { ip -n $P-$1 -4 -o addr show dev eth0 | grep -q " $VIP/"; }
lacks_vip() { ! has_vip "$1"; }

# start_server NODE: socat answering NODE on 8080; its pid in $TMP/NODE.srv.
# The bash wrapper reaps it when it is killed (no zombie, no job report).
start_server() {
	ip netns exec $P-$1 bash -c 'socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:"echo $1" &
		echo $! > "$0"; wait' "$TMP/$1.srv" "$1" 2>/dev/null &
	wait_for 5 serving $1
}
serving() { ip netns exec $P-$1 bash -c '</dev/tcp/127.0.0.1/8080' 2>/dev/null; }

# write_conf NODE PRIO PEER ADVERT [TOP-LEVEL BLOCK] [INSTANCE LINES]
write_conf() {
	cat > "$TMP/$1.conf" <<EOF
global_defs {
	router_id $1
	vrrp_version 3
	script_user root
}
vrrp_script chk_srv {
	script "/bin/bash -c '</dev/tcp/127.0.0.1/8080'"
	interval 1
	timeout 1
	fall 1
	rise 1
}
${5:-}
vrrp_instance VI_1 {
	state BACKUP
	interface eth0
	virtual_router_id 51
	priority $2
	advert_int $4
	unicast_src_ip ${ADDR[$1]}
	unicast_peer {
		$3
	}
	virtual_ipaddress {
		$VIP/32 dev eth0
	}
	track_script {
		chk_srv
	}
	${6:-}
}
EOF
}

start_ka() {
	ip netns exec $P-$1 keepalived -n -l -D -P -f "$TMP/$1.conf" \
		-p "$TMP/$1.pid" -r "$TMP/$1.vrrp.pid" >>"$TMP/$1.log" 2>&1 &
	KA[$1]=$!
}
stop_ka() {
	[ -n "${KA[$1]:-}" ] || return 0
	kill "${KA[$1]}" 2>/dev/null || true
	{ wait "${KA[$1]}"; } 2>/dev/null || true
	KA[$1]=
}

# restore: ka1 serving and master, ka2 backup, the client reaching ka1;
# 1 if that state is not reached.
restore() {
	ip -n $P-br link set v-ka1 up || return 1
	serving ka1 || start_server ka1 || return 1
	wait_for 20 has_vip ka1 || return 1
	wait_for 20 lacks_vip ka2 || return 1
	ip netns exec $P-cl "$PROBE" -T 10000 $VIP 8080 ka1 now >/dev/null ||
		{ echo "  the client does not reach ka1 on the VIP" >&2; return 1; }
	sleep "0.$(printf %03d $((RANDOM % 1000)))"
}

# recover: after a failed round, start ka1 and ka2 afresh (keepalived and
# server killed, port up, VIP removed) and restore; 1 if even that fails.
recover() {
	local rc=0
	KA[ka1]='' KA[ka2]=''
	GRACEFUL=1 lan_reset $P ka1=${ADDR[ka1]} ka2=${ADDR[ka2]} || rc=1
	start_server ka1 || rc=1
	start_server ka2 || rc=1
	start_ka ka1
	start_ka ka2
	[ $rc = 0 ] && restore
}

kill_server() { kill -9 "$(cat "$TMP/ka1.srv")" 2>/dev/null; }
cut_master() { ip -n $P-br link set v-ka1 down; }
# measure SCENARIO: one event, prints the ms until ka2 answers on the VIP.
measure() {
	case $1 in
	kill) measure_event $P-cl $VIP ka2 kill_server ;;
	cut) measure_event $P-cl $VIP ka2 cut_master ;;
	esac
}

echo "keepalived failover benchmark, $(nproc) cores, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "$(keepalived --version 2>&1 | head -1), VRRPv3 unicast, vrrp_script TCP check interval 1 fall 1 rise 1 weight 0; N=$N"
start_server ka1 && start_server ka2 || setup_failed "socat servers do not answer on 8080"
ROWS=()
for adv in $ADVERTS; do
	write_conf ka1 150 ${ADDR[ka2]} "$adv"
	write_conf ka2 100 ${ADDR[ka1]} "$adv"
	start_ka ka1
	start_ka ka2
	# Not a round yet: a failure here shows in the first round if recover
	# cannot mend it.
	restore || recover || echo "  advert_int $adv: ka1 is not master after a reset" >&2
	for sc in kill cut; do
		: > "$TMP/$sc-$adv"
		fails=0
		for i in $(seq "$N"); do
			if ms=$(measure $sc); then
				why=
			else
				why="no answer from ka2 (${ms:-nothing measured})"
			fi
			if ! restore; then
				why="${why:+$why; }restore did not reach the starting state"
				recover || echo "  reset of ka1 and ka2 failed; the next round tries again" >&2
			fi
			if [ -z "$why" ]; then
				echo "$ms" >> "$TMP/$sc-$adv"
			else
				fails=$((fails + 1))
				round_failed "$sc advert_int $adv round $i: $why"
			fi
		done
		ROWS+=("$(printf '%-6s %7s s %s %6d' $sc "$adv" "$(stats "$TMP/$sc-$adv")" $fails)")
		echo "  done: $sc advert_int $adv: $(tr '\n' ' ' < "$TMP/$sc-$adv")" >&2
	done
	stop_ka ka1
	stop_ka ka2
done

printf '\n%-6s %9s %4s %9s %9s %9s %6s\n' scenario advert n p50_ms p99_ms max_ms failed
printf '%s\n' "${ROWS[@]}"

# --- checks ---------------------------------------------------------------
echo
# track_process: keepalived needs the kernel's process-event connector,
# which only serves the initial network namespace.
write_conf ka1 150 ${ADDR[ka2]} 1 "vrrp_track_process trk_srv {
	process socat
	quorum 1
	delay 0.1
}" "track_process {
		trk_srv
	}"
mv "$TMP/ka1.log" "$TMP/ka1-bench.log"
start_ka ka1
sleep 2
stop_ka ka1
msg=$(grep -E 'process event|tracked process' "$TMP/ka1.log" | sed 's/^.*[0-9]\{4\}: //' | paste -sd ';') || true
echo "track_process in a network namespace: ${msg:-no error logged}"
sed -i 's/^\tinterval 1$/\tinterval 0.1/' "$TMP/ka1.conf"
msg=$(keepalived -t -l -f "$TMP/ka1.conf" 2>&1 | grep 'script interval' | tail -1 | sed 's/^.*(chk_srv): //') || true
echo "vrrp_script interval 0.1: ${msg:-accepted}"

# A master whose keepalived dies by SIGKILL: does it keep the VIP?
write_conf ka1 150 ${ADDR[ka2]} 0.1
write_conf ka2 100 ${ADDR[ka1]} 0.1
start_ka ka1
start_ka ka2
if ! { restore || recover; }; then
	echo "keepalived on the master killed -9: not checked (ka1 did not become master)"
else
	disown "${KA[ka1]}" # no "Killed" job report
	kill -9 $(pgrep -P "${KA[ka1]}") "${KA[ka1]}" 2>/dev/null || true
	KA[ka1]=
	if ! wait_for 10 has_vip ka2; then
		echo "keepalived on the master killed -9: ka2 did not take the VIP within 10 s"
	elif sleep 1 && has_vip ka1; then
		echo "keepalived on the master killed -9: ka2 took the VIP, ka1 still has it (duplicate address)"
	else
		echo "keepalived on the master killed -9: ka2 took the VIP, ka1 removed it"
	fi
fi
stop_ka ka2
