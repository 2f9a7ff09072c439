#!/usr/bin/env bash
# Side-by-side call rates of SIP masking systems on loopback, with SIPp.
#
#   bench/compare.sh [-r "RATES"] [-s SECONDS] [-n BINDINGS] TARGET...
#
# TARGET names a file of bench/targets (or scripts/bench-targets): direct
# (no system in between: the harness's ceiling), floor (a byte relay: the
# kernel's share), kamailio (the anchor), sipmask (target/release/sipmask,
# or SIPMASK_BIN). Each target runs every rate (calls/s) for SECONDS: the
# caller A dials X of one of the AXB bindings of bindings.csv (10,000; -n
# makes BINDINGS of them instead), the callee rings,
# answers 20 ms later, the caller hangs up after one second. One row per
# step: calls, failures, the caller's retransmissions, INVITE->200
# percentiles, the target's CPU per call (user+system, all its processes)
# and its memory (PSS) at the end. A step is clean with at most 0.1% of
# its calls failed; a target's ramp stops at its first step that is not.
# Only ratios from one run mean anything: these machines drift.
# SIPP_CALLER_ARGS adds to the caller's SIPp arguments: "-t un -max_socket
# 15000" places each call from a socket of its own, as many callers or
# trunks do (nodes that share a port are spread by the kernel over the
# sources).
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
rates="250 500 1000 1500 2000 2500 3000 4000"
secs=10 nbind=""
while getopts "r:s:n:" opt; do
	case $opt in
	r) rates=$OPTARG ;;
	s) secs=$OPTARG ;;
	n) nbind=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-r RATES] [-s SECONDS] [-n BINDINGS] TARGET..." >&2; exit 2; }
command -v sipp >/dev/null || bench_install sip-tester
bench_ports_free
sipp_workdir sipbench
if [ -n "$nbind" ]; then
	bench_bindings "$nbind" "$work/bindings.csv"
else
	cp "$BENCH/bindings.csv" "$work/bindings.csv"
fi
bench_calls "$work/bindings.csv" "$work/calls.csv"
hz=$(getconf CLK_TCK)

cpu_ticks() { # utime+stime of the given processes, in clock ticks
	local t=0 p f
	for p in "$@"; do
		f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + ${f% *} + ${f#* }))
	done
	echo $t
}
pss_mib() { # proportional resident memory of the given processes
	local k=0 p v
	for p in "$@"; do
		v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		k=$((k + ${v:-0}))
	done
	echo $((k / 1024))
}
percentile() { # percentile RTT_CSV P: P-th percentile of the response times (ms)
	awk -F';' 'NR > 1 && $2 != "" { print $2 }' "$1" | sort -n | awk -v p="$2" '
		{ v[NR] = $1 } END { if (!NR) { print "-"; exit } i = int(NR * p / 100); if (i < 1) i = 1; printf "%.2f", v[i] }'
}
start_callee() {
	sipp -sf "$BENCH/sipp/callee.xml" -i 127.0.0.1 -p $UAS_PORT -nostdin -max_socket 60000 \
		>"$1/callee.out" 2>&1 &
	pids+=($!)
	uas=$!
}

fmt='%-10s %6s %7s %7s %8s %8s %8s %8s %11s %7s\n'
# shellcheck disable=SC2059
printf "$fmt" target rate calls failed retrans p50_ms p99_ms max_ms cpu_us/call pss_mib
declare -A best
for target in "$@"; do
	bench_target "$target"
	dir=$work/$target
	mkdir -p "$dir"
	[ -n "$UAS_AFTER" ] || start_callee "$dir"
	target_start "$dir" $SUT_PORT "$CALLEE" "$work/bindings.csv" >"$dir/start.log" 2>&1
	[ -z "$UAS_AFTER" ] || start_callee "$dir"
	mapfile -t started < <(target_pids "$dir")
	pids+=("${started[@]}") # stopped on any exit
	to=127.0.0.1:$SUT_PORT
	if [ -n "$DIRECT" ]; then
		to=$CALLEE
	elif ! bench_ready; then
		echo "$target does not answer OPTIONS" >&2
		bench_stop "$dir"
		continue
	fi
	best[$target]=0
	for rate in $rates; do
		out=$dir/$rate
		mkdir -p "$out"
		mapfile -t tp < <(target_pids "$dir")
		t0=$(cpu_ticks "${tp[@]}")
		(cd "$out" && timeout $((secs * 4 + 30)) sipp "$to" -sf "$BENCH/sipp/caller.xml" \
			-inf "$work/calls.csv" -i 127.0.0.1 -p $UAC_PORT -r "$rate" -m $((rate * secs)) \
			-l $((rate * 8)) -max_socket 60000 -nostdin -trace_rtt -rtt_freq 1 \
			${SIPP_CALLER_ARGS:-} >stdout 2>&1) || true
		t1=$(cpu_ticks "${tp[@]}")
		ok=$(sipp_count "Successful call" "$out/stdout")
		bad=$(sipp_count "Failed call" "$out/stdout")
		ok=${ok:-0} bad=${bad:-$((rate * secs))}
		retrans=$(sipp_retrans "$out/stdout")
		rtt=$(find "$out" -name '*_rtt.csv' | head -1)
		p50=- p99=- pmax=-
		[ -z "$rtt" ] || { p50=$(percentile "$rtt" 50); p99=$(percentile "$rtt" 99); pmax=$(percentile "$rtt" 100); }
		cpu=- mem=-
		if [ ${#tp[@]} -gt 0 ]; then
			cpu=$(((t1 - t0) * 1000000 / hz / (ok + bad > 0 ? ok + bad : 1)))
			mem=$(pss_mib "${tp[@]}")
		fi
		# shellcheck disable=SC2059
		printf "$fmt" "$target" "$rate" $((ok + bad)) "$bad" "$retrans" "$p50" "$p99" "$pmax" "$cpu" "$mem"
		[ "$ok" -gt 0 ] && [ $((bad * 1000)) -le $((ok + bad)) ] || break
		best[$target]=$rate
		sleep 5 # the step's last calls end
	done
	bench_stop "$dir"
	kill "$uas" 2>/dev/null || true
	wait "$uas" 2>/dev/null || true
	sleep 2
done
echo
for target in "$@"; do echo "highest clean rate: $target ${best[$target]:-0} calls/s"; done
