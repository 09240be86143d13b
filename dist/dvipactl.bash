# bash completion for dvipactl(8). Verbs and their options are read from
# "dvipactl --help", the program's own verb table, so that they never fall
# out of step with it.
_dvipactl()
{
	local cur prev words cword
	_init_completion || return

	local help verbs verb='' opts i
	help=$("${words[0]}" --help 2>/dev/null) || return
	verbs=$(sed -n '/^verbs:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' <<<"$help")

	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-S | --socket | --vipa | --rank | --signal | --to | --node | --port | --source | --listen)
			((i++))
			;;
		--)
			if [[ $verb == run ]]; then
				_command_offset $((i + 1))
				return
			fi
			;;
		-*) ;;
		*)
			[[ -z $verb ]] && verb=${words[i]}
			;;
		esac
	done

	case $prev in
	-S | --socket)
		_filedir
		return
		;;
	--signal)
		mapfile -t COMPREPLY < <(compgen -A signal -- "$cur")
		return
		;;
	--vipa | --rank | --to | --node | --port | --source | --listen)
		return
		;;
	esac

	if [[ -z $verb ]]; then
		opts="$verbs -S --socket --json --help --version"
	else
		opts="$(sed -n "s/^  $verb\( .*\)\{0,1\}$/\1/p" <<<"$help" | grep -o -- '--[a-z]*' | sort -u) --help"
	fi
	mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
}
complete -F _dvipactl dvipactl
