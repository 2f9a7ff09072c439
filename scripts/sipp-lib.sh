# Shared by the shell scripts that drive the bench's SIPp scenarios
# (scripts/syscalls.sh, scripts/cpu-pairs.sh, scripts/thread-cpu.sh): the
# caller's input file and SIPp's closing screen read the way
# bench/compare.sh reads them, so that their counts mean what the
# harness's do, and a work directory cleaned up with what ran in it. Source
# it; it runs nothing by itself.

# sipp_calls_csv BENCH OUT: the callers and virtual numbers of the bench's
# bindings as a SIPp -inf file.
sipp_calls_csv() {
	{ echo SEQUENTIAL; tail -n +2 "$1/bindings.csv" | awk -F, '{ print $1 ";" $2 }'; } >"$2"
}

# sipp_count ROW FILE: the cumulative count of "Successful call" or
# "Failed call" on SIPp's last screen in FILE; nothing if there is none.
sipp_count() {
	awk -F'|' -v row="$1" 'index($0, row) { gsub(/ /, "", $3); n = $3 } END { printf "%s", n }' "$2"
}

# sipp_retrans FILE: retransmissions of what the caller sent, the second
# number on each "---------->" row of SIPp's last screen in FILE.
sipp_retrans() {
	awk '/---------->/ { n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/ && ++n == 2) s += $i }
		END { print s + 0 }' "$1"
}

# sipp_workdir NAME: a fresh work directory in $work (/tmp/NAME.XXXXXX) and
# an empty $pids; on exit, however the script ends, every pid in $pids is
# killed and $work removed (kept, and named, when KEEP is set).
sipp_workdir() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	pids=()
	trap sipp_cleanup EXIT
	trap 'exit 143' TERM INT HUP
}

sipp_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] && echo "work files: $work" >&2 || rm -rf "$work"
}
