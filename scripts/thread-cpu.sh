#!/usr/bin/env bash
# CPU per call of each of sipmask's threads, step after step in one process.
#
#   scripts/thread-cpu.sh [-s SECONDS] BINARY "RATE..." [SERVE-ARGS...]
#
# Why: compare.sh gives one figure per process and step; this says which
# thread spent it (the SIP thread, the store writer, the tokio workers, the
# log writer) and with how many page faults and context switches, and it
# runs the steps in one process as compare.sh does, so a later step shows
# what a warm server costs (its tables grown, its heap faulted in).
#
# A run: the bench's SIPp callee on 5090, BINARY serving the bench's
# bindings on 5080 (`bindings import`, `serve --trunk`, plus SERVE-ARGS,
# e.g. `--config FILE`), then for each RATE (e.g. "1000 1000 2000") SIPp
# placing RATE calls/s for SECONDS (10) from 5061. CPU is the scheduler's
# own run time of each thread (/proc/PID/task/TID/schedstat, nanoseconds:
# not tick-sampled like utime and stime), faults are minor faults, and
# switches are voluntary plus involuntary, each divided by the step's
# calls. Failed calls and retransmissions as compare.sh counts them
# (scripts/sipp-lib.sh). BENCH is bench/ unless set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-$here/../bench}
bench=$(cd "$bench" && pwd)
# shellcheck source=scripts/sipp-lib.sh
source "$here/sipp-lib.sh"
secs=10
while getopts "s:" opt; do
	case $opt in
	s) secs=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || { echo "usage: $0 [-s SECONDS] BINARY \"RATE...\" [SERVE-ARGS...]" >&2; exit 2; }
bin=$1 rates=$2
shift 2
[ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp not found" >&2; exit 1; }

sipp_workdir threadcpu
sipp_calls_csv "$bench" "$work/calls.csv"

sipp -sf "$bench/sipp/callee.xml" -i 127.0.0.1 -p 5090 -nostdin -max_socket 60000 \
	>"$work/uas.log" 2>&1 &
pids+=($!)
"$bin" bindings import --data-dir "$work/data" "$bench/bindings.csv" >"$work/import.log" 2>&1
"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:5080 --trunk 127.0.0.1:5090 "$@" \
	>"$work/sipmask.log" 2>&1 &
pid=$!
pids+=("$pid")
sleep 2
kill -0 "$pid" 2>/dev/null || { cat "$work/sipmask.log" >&2; exit 1; }

# snapshot: per thread name, run time (ns), minor faults, context switches
snapshot() {
	local t
	for t in /proc/"$pid"/task/*; do
		printf '%s %s %s %s\n' "$(tr ' ' _ <"$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")" \
			"$(awk '{ print $10 }' "$t/stat")" \
			"$(awk '/^(non)?voluntary_ctxt_switches/ { s += $2 } END { print s }' "$t/status")"
	done | awk '{ c[$1] += $2; f[$1] += $3; s[$1] += $4 }
		END { for (k in c) print k, c[k], f[k], s[k] }' | sort
}

for rate in $rates; do
	n=$((rate * secs))
	snapshot >"$work/before"
	(cd "$work" && sipp 127.0.0.1:5080 -sf "$bench/sipp/caller.xml" -inf "$work/calls.csv" \
		-i 127.0.0.1 -p 5061 -r "$rate" -m "$n" -l $((rate * 8)) -max_socket 60000 \
		-nostdin -timeout $((secs * 3 + 30))s >"$work/uac.log" 2>&1) || true
	snapshot >"$work/after"
	failed=$(sipp_count "Failed call" "$work/uac.log")
	echo "rate $rate: $n calls, failed ${failed:-?}, retransmissions $(sipp_retrans "$work/uac.log")"
	join "$work/before" "$work/after" | awk -v n="$n" '
		{ printf "  %-16s %8.1f us/call %6.2f faults/call %6.2f switches/call\n",
			$1, ($5 - $2) / 1000 / n, ($6 - $3) / n, ($7 - $4) / n; t += $5 - $2 }
		END { printf "  %-16s %8.1f us/call\n", "all threads", t / 1000 / n }'
done
