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

# The dvipad of the release before batches (wire protocol 1), for the
# rolling upgrade test (tests/system/test_upgrade.py). A clone without that
# history skips it.
OLD_REV=971f445
if [ -z "${DVIPA_OLD_DVIPAD:-}" ] && git rev-parse -q --verify "$OLD_REV^{commit}" >/dev/null 2>&1; then
	echo "== the dvipad of $OLD_REV (protocol 1)"
	rm -rf build-old && mkdir -p build-old/src
	git archive "$OLD_REV" | tar -x -C build-old/src
	meson setup build-old/build build-old/src --buildtype=release -Dtests=disabled >/dev/null
	ninja -C build-old/build dvipad >/dev/null
	export DVIPA_OLD_DVIPAD="$PWD/build-old/build/dvipad"
fi

echo "== system tests"
export DVIPA_BUILD="$PWD/$BUILD"
pytest-3 -v tests/system "$@"
