#!/bin/bash
# Run the deterministic cluster simulator (tests/sim/sim.c) for as long as
# asked: seeds from SEED (default 1) upward, each for STEPS steps (default
# 10000), until SECONDS have passed. Prints the seeds run, steps, faults
# injected by kind, state exchanges, steps per second and the failures,
# each with the command line that replays it (the first with its trace).
# A failing seed is counted, never the end of the run.
#
#   bench/sim.sh [SECONDS]          default 60
#   NODES=5 bench/sim.sh 600        every seed with 5 nodes (default 3..7)
#   MUTANT=1 bench/sim.sh 10        the merge race of issue 9 brought back
#   CHECK=25 bench/sim.sh 60        only some invariants (see dvipa-sim)
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
BUILD=${BUILD:-build-sim}
args=(--seconds "$secs" --seeds "${SEED:-1}..18446744073709551615" --steps "${STEPS:-10000}" --keep-going --quiet)
[ -n "${NODES:-}" ] && args+=(--nodes "$NODES")
[ -n "${MUTANT:-}" ] && args+=(--mutant)
[ -n "${CHECK:-}" ] && args+=(--check "$CHECK")

if [ ! -d "$BUILD" ]; then
	meson setup "$BUILD" -Dtests=enabled >/dev/null || exit 1
fi
ninja -C "$BUILD" tests/dvipa-sim >/dev/null || exit 1

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$BUILD/tests/dvipa-sim" "${args[@]}" >"$out"
rc=$?
# The first failure with its trace, then one line per failure.
sed -n '/^FAILURE/,/^replay/p' "$out" | awk '/^replay/ && !done { print; done = 1; next } !done'
echo
echo "== failures"
grep -E '^(FAILURE|replay)' "$out" | paste - - | sed 's/\t/\n    /' | head -200
echo
sed -n '/^seeds /,$p' "$out"
exit $rc
