#!/bin/bash
# Run every test of dvipa: unit tests and golden config tests (meson test),
# the fuzzers for a short while, and the system tests in network namespaces
# (pytest-3), after checking that every C file is formatted by .clang-format.
# Everything is built with AddressSanitizer/UBSan and -Werror.
# Needs root (namespaces, addresses); installs its own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
BUILD=${BUILD:-build-test}

./scripts/install-deps.sh

echo "== format"
./scripts/check-format.sh

echo "== build ($BUILD: ASan+UBSan, -Werror)"
if [ ! -d "$BUILD" ]; then
	meson setup "$BUILD" -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true -Dtests=enabled
fi
ninja -C "$BUILD"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== unit and config tests"
meson test -C "$BUILD" --print-errorlogs

echo "== install (DESTDIR) and the systemd unit"
./scripts/check-install.sh "$BUILD"

echo "== Debian packages (dpkg-buildpackage, lintian, unpacked and run)"
debs=$(mktemp -d)
./scripts/check-package.sh "$debs"
echo "== the packaged unit under systemd (a container of this host's system)"
./scripts/check-unit.sh "$debs"
rm -rf "$debs"

echo "== fuzzers (${FUZZ_SECONDS}s each)"
if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=disabled -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-fuzz tests/fuzz_conf tests/fuzz_proto tests/fuzz_wire
for f in conf proto wire; do
	work=$(mktemp -d)
	# The configuration fuzzer starts from the golden test inputs.
	if [ $f = conf ]; then cp tests/config/*.conf examples/dvipa.conf "$work"/; fi
	./build-fuzz/tests/fuzz_$f -max_total_time="$FUZZ_SECONDS" -max_len=8192 -print_final_stats=1 "$work" 2>&1 | tail -n 3
	rm -rf "$work"
done

echo "== system tests"
export DVIPA_BUILD="$PWD/$BUILD"
pytest-3 -v tests/system "$@"
