#!/bin/bash
# dvipa on Corosync against keepalived, measured in the same run on the same
# machine (issue 4): both tables, one after the other. N repetitions each.
set -euo pipefail
cd "$(dirname "$0")/.."
./bench/keepalived.sh
echo
./bench/cluster.sh
