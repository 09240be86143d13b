#!/bin/bash
# Is a Corosync profile stable on this machine? Three idle corosyncs in
# network namespaces on a bridge, for SECONDS; counts the membership changes
# and knet link losses a healthy cluster should not have. Nothing of dvipa
# runs: this checks the profile alone (docs/cluster.md, "Timing").
#
#   bench/corosync-stability.sh TOKEN CONSENSUS [SECONDS]
#   KNET_PING="20 75" bench/corosync-stability.sh 150 180     # the old fast profile: splits every ~8 s
#
# Prints one line: the profile, membership changes after the first
# complete one, "link down" events, and failures: a corosync that exits
# during the run (it is started again, and the changes that causes are
# counted too) or a cluster that never has all three members (no figure).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 TOKEN CONSENSUS [SECONDS]" >&2; exit 64; }
TOKEN=$1 CONS=$2 SECS=${3:-40}
P=dvst$$
TMP=$(mktemp -d)
NSS="br n1 n2 n3"
declare -A CS

. bench/lib.sh
cleanup() {
	set +e
	lan_down $P $NSS
	corosync_shm_clean
	rm -rf "$TMP"
}
trap cleanup EXIT
command -v corosync >/dev/null || ./scripts/install-deps.sh || setup_failed "scripts/install-deps.sh failed"
require corosync
lan_up $P n1=192.0.2.1 n2=192.0.2.2 n3=192.0.2.3 || setup_failed "namespaces $P-*"
. scripts/corosync-conf.sh
start_corosync() {
	corosync_in $P $1 "$TMP/$1.conf"
	CS[$1]=$COROSYNC_PID
}
for n in n1 n2 n3; do
	corosync_conf "$TMP/$n.conf" "$TMP/$n.log" dvstab "$TOKEN" "$CONS" 192.0.2.1 192.0.2.2 192.0.2.3
	start_corosync $n
done
failed=0
end=$((SECONDS + SECS))
while [ $SECONDS -lt $end ]; do
	sleep 1
	for n in n1 n2 n3; do
		kill -0 "${CS[$n]}" 2>/dev/null && continue
		failed=$((failed + 1))
		echo "  corosync on $n exited; started again" >&2
		kill_in $P $n
		corosync_shm_clean
		start_corosync $n
	done
done
# Membership lines after the first one with all three nodes.
if grep -q 'Members\[3\]' "$TMP/n1.log"; then
	changes=$(awk '/Members\[/ { if (full) n++; if (/Members\[3\]/) full = 1 } END { print n + 0 }' "$TMP/n1.log")
else
	failed=$((failed + 1))
	changes="- (never three members)"
fi
downs=$(cat "$TMP"/n*.log | grep -c "link: 0 is down" || true)
ping=${KNET_PING:-200 600}
echo "token $TOKEN consensus $CONS knet ping ${ping// //} ms, ${SECS} s idle: $changes membership change(s) on n1, $downs knet link loss(es), $failed failed"
