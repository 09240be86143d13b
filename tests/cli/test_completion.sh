#!/bin/bash
# dvipactl's bash completion (dist/dvipactl.bash) against the built
# dvipactl: verbs, each verb's options, option arguments and the command
# after "run ... --". Usage: test_completion.sh DVIPACTL COMPLETION.
set -u
dvipactl=$1
bc=/usr/share/bash-completion/bash_completion
if [ ! -r "$bc" ]; then
	echo "SKIP: $bc not installed (package bash-completion)"
	exit 77
fi
# shellcheck disable=SC1090
. "$bc"
# shellcheck disable=SC1090
. "$2"

failed=0
# complete WORD... : ...: what completing the last WORD offers, in $got
# (space-separated and padded); shifted tells how many arguments it took.
complete_words() {
	local w=()
	shifted=0
	while [ "$1" != ":" ]; do
		w+=("$1")
		shift
		shifted=$((shifted + 1))
	done
	COMP_WORDS=("$dvipactl" "${w[@]}")
	COMP_CWORD=${#w[@]}
	COMP_LINE="${COMP_WORDS[*]}"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	# compopt complains outside an interactive completion; harmless here.
	_dvipactl 2>/dev/null
	got=" ${COMPREPLY[*]} "
	words="${w[*]}"
}
# expect WORD... : WANTED...: completing the last WORD offers every WANTED.
expect() {
	complete_words "$@"
	shift $((shifted + 1))
	for e in "$@"; do
		if [[ $got != *" $e "* ]]; then
			echo "FAIL: dvipactl $words<TAB> offers [${got# }], not '$e'"
			failed=1
		fi
	done
}
# refuse WORD... : UNWANTED...: completing the last WORD offers none of them.
refuse() {
	complete_words "$@"
	shift $((shifted + 1))
	for e in "$@"; do
		if [[ $got == *" $e "* ]]; then
			echo "FAIL: dvipactl $words<TAB> offers '$e' [${got# }]"
			failed=1
		fi
	done
}

expect "" : status config activate deactivate reactivate move leave join reload metrics monitor run help -S --json --version
expect st : status
expect mo : monitor move
expect monitor -- : --json
refuse metrics -- : --json
expect -S /tmp/sock re : reactivate reload
expect run -- : --standby --rank --signal --vipa --source --listen --help
expect move 10.1.1.5 -- : --to
refuse move 10.1.1.5 -- : --vipa --standby
expect deactivate 10.1.1.5 --n : --node
expect run --signal SIGTE : SIGTERM
expect run --vipa 10.1.1.5 -- ech : echo
# An option's argument is not the verb, nor completed as an option.
expect run --listen 10.1.1.5:80 --source 10.1.1.5 -- ech : echo
refuse run --listen "" : --vipa status
refuse status "" : status
exit $failed
