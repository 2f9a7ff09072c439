#!/usr/bin/env bash
# Benchmarks of the registrar, with the project's harness (bench/):
#
#   scripts/bench-registrar.sh [-r "RATES"] [-s SECONDS] [-c "CALL RATES"]
#
# (-c "" skips the calls.)
#
# 1. Registrations per second with digest: SIPp (bench/register.xml) sends
#    REGISTER, takes the 401, answers with MD5 credentials and takes the
#    200, at each rate for SECONDS; per step: registrations, failures,
#    retransmissions, p99 of each round trip, sipmask's CPU per registration.
# 2. Calls through a registered contact beside calls through the trunk, in
#    one bench/compare.sh run (the registered target's callee starts after
#    it, so the target can register the callee's address first).
# Run from the project root after `cargo build --release` (or set SIPMASK_BIN).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rates="500 1000 2000 3000 4000"
secs=10
call_rates="1000 2000"
while getopts "r:s:c:" opt; do
	case $opt in
	r) rates=$OPTARG ;;
	s) secs=$OPTARG ;;
	c) call_rates=$OPTARG ;;
	*) exit 2 ;;
	esac
done
bin=${SIPMASK_BIN:-$root/target/release/sipmask}
[ -x "$bin" ] || { echo "no sipmask at $bin: cargo build --release" >&2; exit 1; }
export SIPMASK_BIN=$bin BENCH_EXTRA=$root/bench
work=$(mktemp -d /tmp/sipreg.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT

echo "== registrations per second (digest, MD5) =="
# One SIPp stands for many phones: its address is not rate-limited here
# (sip.source_rate would ban a single source sending thousands a second).
printf '[sip]\nsource_rate = 0\n\n[registrar]\nalgorithms = ["MD5"]\n' >"$work/sipmask.toml"
"$bin" accounts add --data-dir "$work/data" bench --password bench-password >/dev/null
"$bin" serve --config "$work/sipmask.toml" --data-dir "$work/data" --listen 127.0.0.1:5580 \
	--api-listen "" >"$work/sipmask.log" 2>&1 &
pid=$!
sleep 1
hz=$(getconf CLK_TCK)
ticks() { cut -d' ' -f14,15 "/proc/$pid/stat" | awk '{ print $1 + $2 }'; }
fmt='%-6s %8s %7s %8s %12s %14s\n'
# shellcheck disable=SC2059
printf "$fmt" rate regs failed retrans p99_ms cpu_us/reg
for rate in $rates; do
	out="$work/reg_$rate"; mkdir -p "$out"
	t0=$(ticks)
	(cd "$out" && timeout $((secs * 4 + 30)) sipp 127.0.0.1:5580 -sf "$root/bench/register.xml" \
		-s bench -au bench -ap bench-password -i 127.0.0.1 -p 5581 -r "$rate" -m $((rate * secs)) \
		-l $((rate * 4)) -nostdin -trace_rtt -rtt_freq 1 >"$out/stdout" 2>&1) || true
	t1=$(ticks)
	ok=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); print $3 }' "$out/stdout" | tail -1)
	bad=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); print $3 }' "$out/stdout" | tail -1)
	ok=${ok:-0} bad=${bad:-$((rate * secs))}
	retrans=$(awk '/---------->/ { n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/ && ++n == 2) s += $i }
		END { print s + 0 }' "$out/stdout")
	rtt=$(ls "$out"/*_rtt.csv 2>/dev/null | head -1)
	p99=-
	[ -n "$rtt" ] && p99=$(awk -F';' 'NR > 1 && $2 != "" { print $2 }' "$rtt" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * 0.99); if (i < 1) i = 1; printf "%.2f", v[i] }')
	cpu=$(((t1 - t0) * 1000000 / hz / (ok + bad > 0 ? ok + bad : 1)))
	# shellcheck disable=SC2059
	[ "$p99" = "0.00" ] && p99="<1" # SIPp measures round trips in whole ms
	printf "$fmt" "$rate" $((ok + bad)) "$bad" "$retrans" "$p99" "$cpu"
	[ $((bad * 1000)) -le $((ok + bad)) ] || break
	sleep 2
done
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

[ -n "$call_rates" ] || exit 0
echo
echo "== calls: through the trunk and through a registered contact, one run =="
"$root/bench/compare.sh" -r "$call_rates" -s "$secs" sipmask sipmask-registered
