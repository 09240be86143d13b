#!/bin/bash
# dvipa on Corosync against keepalived, measured in the same run on the same
# machine (issue 4): both tables, one after the other. N repetitions each.
# Failed rounds are counted in each table's "failed" column; a script that
# cannot set up is reported and the other one still runs. Exits 1 if either
# could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
./bench/keepalived.sh || { rc=$?; echo "bench/keepalived.sh did not complete (exit $rc)" >&2; }
echo
./bench/cluster.sh || { rc=$?; echo "bench/cluster.sh did not complete (exit $rc)" >&2; }
[ $rc = 0 ]
