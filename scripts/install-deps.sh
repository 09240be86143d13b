#!/bin/sh
# Install everything dvipa needs to build, test, package, demo and benchmark on
# Debian 12. Idempotent: packages already present are left alone, and the
# package index is refreshed only when something is missing.
set -eu

PKGS="build-essential pkg-config meson ninja-build clang clang-format libclang-rt-14-dev
libfuzzer-14-dev libmnl-dev libnftables-dev libsystemd-dev libjson-c-dev
libcmocka-dev libmicrohttpd-dev python3 python3-pytest python3-prometheus-client iproute2 tcpdump iputils-ping
netcat-openbsd procps psmisc nginx vsftpd socat curl corosync libcpg-dev
libquorum-dev libvotequorum-dev libcmap-dev libcorosync-common-dev bash-completion
debhelper lintian fakeroot systemd-container haproxy stress-ng iperf3"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages:$missing (run as root)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# The test and bench servers (nginx, vsftpd, haproxy) must not start as system services
	# when installed: the tests run their own instances in namespaces.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
