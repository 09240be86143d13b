#!/bin/sh
# Every C file of the tree is formatted by the one .clang-format at the root
# (clang-format 14, Debian 12's). Prints the files that are not and exits 1;
# `scripts/check-format.sh --fix` formats them in place.
set -eu
cd "$(dirname "$0")/.."

files=$(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--fix" ]; then
	# shellcheck disable=SC2086
	clang-format -i $files
	exit 0
fi
bad=""
for f in $files; do
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
	echo "not formatted by .clang-format (run scripts/check-format.sh --fix):$bad" >&2
	exit 1
fi
echo "format: $(echo "$files" | wc -l) files formatted as .clang-format says"
