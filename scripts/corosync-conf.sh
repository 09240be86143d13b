# shellcheck shell=bash
# corosync_conf FILE LOGFILE CLUSTER TOKEN CONSENSUS ADDR...
# Writes a corosync.conf for a dvipa cluster on a LAN: knet, votequorum,
# node ids 1.. in the order of the ADDRs (names n1, n2, ...), the token
# timing given (token_coefficient 0: no extra time per node). Sourced by
# scripts/demo-cluster.sh and bench/cluster.sh.
#
# knet's link check: libknet 1.25 (Debian 12) runs its heartbeat every
# 200 ms whatever the ping interval, so a pong is up to ~200 ms old when it
# is checked. A knet_ping_timeout near or below that takes the link down
# now and then (every ~8 s once the timeout back-off has decayed), and the
# token is lost with it: a healthy cluster splits. 600 ms leaves room; it
# does not slow failure detection, which is the totem token's job.
# KNET_PING="INTERVAL TIMEOUT" overrides them (bench/corosync-stability.sh).
corosync_conf() {
	local file=$1 log=$2 name=$3 token=$4 consensus=$5
	local i=0 a ping
	read -r -a ping <<<"${KNET_PING:-200 600}"
	shift 5
	{
		cat <<CONF
totem {
  version: 2
  cluster_name: $name
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: $token
  token_coefficient: 0
  consensus: $consensus
  interface {
    linknumber: 0
    knet_ping_interval: ${ping[0]}
    knet_ping_timeout: ${ping[1]}
    knet_pong_count: 1
  }
}
nodelist {
CONF
		for a in "$@"; do
			i=$((i + 1))
			printf '  node {\n    ring0_addr: %s\n    nodeid: %d\n    name: n%d\n  }\n' "$a" $i $i
		done
		cat <<CONF
}
quorum {
  provider: corosync_votequorum
}
logging {
  to_logfile: yes
  logfile: $log
  to_stderr: no
  to_syslog: no
}
CONF
	} > "$file"
}
