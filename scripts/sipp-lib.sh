# Shared by the shell scripts that drive the bench's SIPp scenarios
# (scripts/syscalls.sh, scripts/cpu-pairs.sh): the caller's input file and
# SIPp's closing screen read the way ../shared/bench/compare.sh reads them,
# so that their counts mean what the harness's do. Source it; it runs
# nothing by itself.

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
