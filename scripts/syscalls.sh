#!/usr/bin/env bash
# System calls per call of SIP systems under load, counted by the kernel's
# syscall tracepoints (perf stat: every thread of the system, those it
# starts later too; exact counts, no sampling, little overhead).
#
#   scripts/syscalls.sh [-n CALLS] [-r RATE] [-w SECONDS] TARGET...
#
# TARGET is a target of the benchmark harness (a name in $BENCH/targets, or a
# path to such a file, e.g. scripts/bench-targets/sipmask-off.sh). BENCH is
# bench/ unless set. For each target: start it with a SIPp callee,
# count its system calls over a window in which SIPp places CALLS calls
# (5,000) at RATE calls/s (1,000) as compare.sh does (answer after 180 and
# 20 ms, hang up after 1 s) and the timers they leave behind fire (SECONDS
# after the last call, 35: RFC 3261 timer J is 32 s); then count again over
# an idle window of the same length. Per call = (calls - idle) / CALLS.
# Prints the total and the syscalls that matter to a UDP server.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-$here/../bench}
bench=$(cd "$bench" && pwd)
# shellcheck source=scripts/sipp-lib.sh
source "$here/sipp-lib.sh"
ncalls=5000 rate=1000 settle=35
while getopts "n:r:w:" opt; do
	case $opt in
	n) ncalls=$OPTARG ;;
	r) rate=$OPTARG ;;
	w) settle=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-n CALLS] [-r RATE] [-w SECONDS] TARGET..." >&2; exit 2; }
for c in sipp perf ss; do command -v $c >/dev/null || { echo "$c not found" >&2; exit 1; }; done

sut_port=5080 uas_port=5090 uac_port=5061
callee="127.0.0.1:$uas_port"
busy=$(ss -Htuln "( sport = :$sut_port or sport = :$uas_port or sport = :$uac_port )")
[ -z "$busy" ] || { echo "ports in use:"; echo "$busy"; exit 1; } >&2
work=$(mktemp -d /tmp/sipsys.XXXXXX)
calls="$work/calls.csv"
sipp_calls_csv "$bench" "$calls"

uas_pid=""
cleanup() {
	[ -n "$uas_pid" ] && kill "$uas_pid" 2>/dev/null || true
	type target_stop >/dev/null 2>&1 && target_stop "$tdir" || true
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# What a UDP server's calls are made of; the rest is summed as "other".
names=(recvfrom recvmsg recvmmsg sendto sendmsg sendmmsg epoll_wait epoll_pwait futex)
events=raw_syscalls:sys_enter
for n in "${names[@]}"; do events+=",syscalls:sys_enter_$n"; done

# count PIDS SECONDS OUT: every syscall event of PIDS (and their threads)
# for SECONDS, as "name count" lines in OUT.
count() {
	local pids=$1 secs=$2 out=$3
	perf stat -x, -e "$events" -p "$pids" -o "$out.raw" -- sleep "$secs" 2>/dev/null
	awk -F, '$3 ~ /sys_enter/ { sub(/.*sys_enter_?/, "", $3); print ($3 == "" ? "total" : $3), $1 }' \
		"$out.raw" >"$out"
}

fmt='%-12s %6s %7s %8s %9s %8s %8s %8s %8s %8s\n'
# shellcheck disable=SC2059
printf "$fmt" target calls failed retrans sys/call recv send epoll futex other
for target in "$@"; do
	file=$bench/targets/$target.sh
	[ -f "$target" ] && file=$target
	name=$(basename "$target" .sh)
	tdir="$work/$name"; mkdir -p "$tdir"
	# shellcheck source=/dev/null
	source "$file"
	sipp -sf "$bench/sipp/callee.xml" -i 127.0.0.1 -p $uas_port -nostdin -max_socket 60000 \
		>"$tdir/uas.out" 2>&1 &
	uas_pid=$!
	DIRECT=""
	target_start "$tdir" $sut_port "$callee" "$bench/bindings.csv"
	sleep 3
	dest="127.0.0.1:$sut_port"; [ -n "$DIRECT" ] && dest=$callee
	pids=$(target_pids "$tdir" | paste -sd,)
	[ -n "$pids" ] || { echo "$name: no process to count" >&2; continue; }
	window=$((ncalls / rate + 2 + settle))
	count "$pids" $window "$tdir/busy" &
	counting=$!
	sleep 0.5
	(cd "$tdir" && timeout $((window - 1)) sipp "$dest" -sf "$bench/sipp/caller.xml" -inf "$calls" \
		-i 127.0.0.1 -p $uac_port -r "$rate" -m "$ncalls" -l $((rate * 8)) -max_socket 60000 \
		-nostdin >"$tdir/uac.out" 2>&1) || true
	wait $counting
	count "$pids" $window "$tdir/idle"
	ok=$(sipp_count "Successful call" "$tdir/uac.out")
	bad=$(sipp_count "Failed call" "$tdir/uac.out")
	ok=${ok:-0} bad=${bad:-$ncalls}
	retrans=$(sipp_retrans "$tdir/uac.out")
	per() { # per NAME...: (busy - idle) / calls, summed over the names
		awk -v n="$ncalls" -v want=" $* " '
			FILENAME ~ /busy$/ && index(want, " " $1 " ") { b += $2 }
			FILENAME ~ /idle$/ && index(want, " " $1 " ") { i += $2 }
			END { printf "%.1f", (b - i) / n }' "$tdir/busy" "$tdir/idle"
	}
	total=$(per total)
	recv=$(per recvfrom recvmsg recvmmsg)
	send=$(per sendto sendmsg sendmmsg)
	epoll=$(per epoll_wait epoll_pwait)
	futex=$(per futex)
	other=$(awk -v t="$total" -v a="$recv" -v b="$send" -v c="$epoll" -v d="$futex" \
		'BEGIN { printf "%.1f", t - a - b - c - d }')
	# shellcheck disable=SC2059
	printf "$fmt" "$name" $((ok + bad)) "$bad" "$retrans" "$total" "$recv" "$send" "$epoll" "$futex" "$other"
	target_stop "$tdir"
	sleep 2
	kill "$uas_pid" 2>/dev/null || true; wait "$uas_pid" 2>/dev/null || true; uas_pid=""
	unset -f target_start target_stop target_pids
done
rm -rf "$work"
