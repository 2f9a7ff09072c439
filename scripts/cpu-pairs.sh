#!/usr/bin/env bash
# CPU per call of sipmask builds, run in turn, round after round.
#
#   scripts/cpu-pairs.sh [-r RATE] [-s SECONDS] [-k ROUNDS] BINARY...
#
# Why: on these shared machines one binary's CPU per call moves by 10-20%
# within an hour (the neighbours, not the code), so two builds measured one
# after the other say nothing about a change of a few percent. Here each
# round runs every BINARY once, back to back, so a drift hits them alike,
# and the means over ROUNDS (5) are what to compare; the per-round lines
# show whether one build won in most rounds or by one outlier.
#
# A run: the bench's SIPp callee on 5090, the binary serving the bench's
# bindings on 5080 (`bindings import`, `serve --trunk`), and SIPp placing
# RATE (1,000) calls/s for SECONDS (10) from 5061 as compare.sh does. CPU
# is utime+stime of the process and of its SIP thread (`sipmask-sip`) from
# /proc, over the calls only; failed calls and retransmissions are counted
# as compare.sh counts them (scripts/sipp-lib.sh). BENCH is bench/
# unless set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-$here/../bench}
bench=$(cd "$bench" && pwd)
# shellcheck source=scripts/sipp-lib.sh
source "$here/sipp-lib.sh"
rate=1000 secs=10 rounds=5
while getopts "r:s:k:" opt; do
	case $opt in
	r) rate=$OPTARG ;;
	s) secs=$OPTARG ;;
	k) rounds=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-r RATE] [-s SECONDS] [-k ROUNDS] BINARY..." >&2; exit 2; }
for b in "$@"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }; done
command -v sipp >/dev/null || { echo "sipp not found" >&2; exit 1; }

sipp_workdir sipcpu
calls="$work/calls.csv"
sipp_calls_csv "$bench" "$calls"
hz=$(getconf CLK_TCK)

# ticks PID [COMM]: utime+stime of the process, or of its thread COMM.
ticks() {
	if [ $# -eq 1 ]; then
		awk '{ print $14 + $15 }' "/proc/$1/stat"
	else
		local t
		for t in /proc/"$1"/task/*; do
			if [ "$(cat "$t/comm")" = "$2" ]; then awk '{ print $14 + $15 }' "$t/stat"; fi
		done | awk '{ s += $1 } END { print s + 0 }'
	fi
}

# one BINARY: sets $result to "total_us sip_us failed retrans"
one() {
	local bin=$1 dir="$work/run"
	rm -rf "$dir" && mkdir -p "$dir"
	sipp -sf "$bench/sipp/callee.xml" -i 127.0.0.1 -p 5090 -nostdin >"$dir/uas.log" 2>&1 &
	local uas=$!
	"$bin" bindings import --data-dir "$dir/data" "$bench/bindings.csv" >"$dir/import.log" 2>&1
	"$bin" serve --data-dir "$dir/data" --listen 127.0.0.1:5080 --trunk 127.0.0.1:5090 \
		>"$dir/sipmask.log" 2>&1 &
	local pid=$!
	pids=("$uas" "$pid")
	sleep 2
	kill -0 "$pid" 2>/dev/null || { cat "$dir/sipmask.log" >&2; exit 1; }
	local t0 s0 t1 s1 n=$((rate * secs))
	t0=$(ticks "$pid") s0=$(ticks "$pid" sipmask-sip)
	(cd "$dir" && sipp 127.0.0.1:5080 -sf "$bench/sipp/caller.xml" -inf "$calls" \
		-i 127.0.0.1 -p 5061 -r "$rate" -m "$n" -l $((rate * 8)) -max_socket 60000 \
		-nostdin -timeout $((secs * 3 + 30))s >"$dir/uac.log" 2>&1) || true
	t1=$(ticks "$pid") s1=$(ticks "$pid" sipmask-sip)
	kill "$pid" "$uas" 2>/dev/null || true
	wait "$pid" "$uas" 2>/dev/null || true
	pids=()
	local failed retrans
	failed=$(sipp_count "Failed call" "$dir/uac.log")
	retrans=$(sipp_retrans "$dir/uac.log")
	result="$(((t1 - t0) * 1000000 / hz / n)) $(((s1 - s0) * 1000000 / hz / n)) ${failed:-?} $retrans"
}

printf "%-5s %-40s %9s %9s %6s %7s\n" round binary total_us sip_us failed retrans
for r in $(seq 1 "$rounds"); do
	for b in "$@"; do
		one "$b"
		read -r total sip failed retrans <<<"$result"
		printf "%-5s %-40s %9s %9s %6s %7s\n" "$r" "$b" "$total" "$sip" "$failed" "$retrans" |
			tee -a "$work/runs"
	done
done
echo
awk '{ n[$2]++; t[$2] += $3; s[$2] += $4
	if (!($2 in lo) || $3 < lo[$2]) lo[$2] = $3
	if ($3 > hi[$2]) hi[$2] = $3 }
	END { for (b in n) printf "mean %-40s total %6.1f us (%d-%d) sip thread %6.1f us, %d rounds\n",
		b, t[b] / n[b], lo[b], hi[b], s[b] / n[b], n[b] }' "$work/runs"
