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
# complete one, and "link down" events.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 TOKEN CONSENSUS [SECONDS]" >&2; exit 64; }
TOKEN=$1 CONS=$2 SECS=${3:-40}
P=dvst$$
TMP=$(mktemp -d)
NSS="br n1 n2 n3"
command -v corosync >/dev/null || ./scripts/install-deps.sh

. bench/lib.sh
cleanup() {
	lan_down $P $NSS
	rm -rf "$TMP"
}
trap cleanup EXIT

lan_up $P n1=192.0.2.1 n2=192.0.2.2 n3=192.0.2.3
. scripts/corosync-conf.sh
for n in n1 n2 n3; do
	corosync_conf "$TMP/$n.conf" "$TMP/$n.log" dvstab "$TOKEN" "$CONS" 192.0.2.1 192.0.2.2 192.0.2.3
	ip netns exec $P-$n unshare -m --propagation private sh -c \
		"mount -t tmpfs none /run && mkdir -p /run/corosync && exec corosync -f -c $TMP/$n.conf" &
done
sleep "$SECS"
# Membership lines after the first one with all three nodes.
changes=$(awk '/Members\[/ { if (full) n++; if (/Members\[3\]/) full = 1 } END { print n + 0 }' "$TMP/n1.log")
downs=$(cat "$TMP"/n*.log | grep -c "link: 0 is down" || true)
ping=${KNET_PING:-200 600}
echo "token $TOKEN consensus $CONS knet ping ${ping// //} ms, ${SECS} s idle: $changes membership change(s) on n1, $downs knet link loss(es)"
