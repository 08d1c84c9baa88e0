# bash completion for runner(1); installed as
# share/bash-completion/completions/runner by make install.
_runner_home()
{
	local i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-C | --home) printf '%s\n' "${COMP_WORDS[i + 1]}"; return ;;
		--home=*) printf '%s\n' "${COMP_WORDS[i]#--home=}"; return ;;
		esac
	done
	printf '%s\n' "${RUNNER_HOME:-.}"
}

_runner()
{
	local cur prev cmd i home
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands="init run daemon submit check show output results diff
		history list retry-failed cancel pause resume groups status stats
		report archive restore fsck"
	case $prev in
	-C | --home) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	-c | --config | -o) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-C | --home | -c | --config) ((i++)) ;;
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--home --config --json --quiet
				--verbose --no-progress --help --version" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi
	home=$(_runner_home)
	case $cmd in
	init) COMPREPLY=($(compgen -d -- "$cur")) ;;
	run | submit | check) COMPREPLY=($(compgen -f -X '!*.job' -- "$cur")
		$(compgen -d -- "$cur")) ;;
	show | output | results | diff | retry-failed | cancel | pause | resume | \
	report | fsck)
		# batch ids: the directories of batches/ (not archive/)
		COMPREPLY=($(compgen -W "$(ls "$home/batches" 2>/dev/null |
			grep -v '^archive$')" -- "$cur")) ;;
	restore)
		COMPREPLY=($(compgen -W "$(ls "$home/batches/archive" 2>/dev/null |
			sed -n 's/\.tar\.[a-z]*$//p')" -- "$cur")) ;;
	esac
}
complete -F _runner runner
