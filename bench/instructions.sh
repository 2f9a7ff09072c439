#!/usr/bin/env bash
# Instructions each system executes per call, counted by valgrind's
# callgrind: unlike CPU time, the count does not move with what else the
# machine is doing, so it tells whether a change made a system cheaper.
#
#   bench/instructions.sh [-n CALLS] [-r RATE] [-k RUNS] [-w SECONDS] [-x EXTRA] TARGET...
#
# A run starts TARGET with all its processes under callgrind, waits until
# it answers OPTIONS, places CALLS calls (300) at RATE calls/s (30) as
# compare.sh does, waits SECONDS (40: Timer J of the last calls), stops it
# and adds up the instructions (Ir) of every process. The same again with
# no call, idle for as long: Ir/call = (with calls - idle) / CALLS. Each
# target runs RUNS times (2). No figure when a call failed. KEEP=1 keeps
# the callgrind files (callgrind_annotate shows where the count goes).
# -x EXTRA loads EXTRA more bindings (of other numbers, never called)
# beside the bench's 10,000: a call should cost the same in a large table.
set -euo pipefail
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
ncalls=300 rate=30 runs=2 settle=40 extra=0
while getopts "n:r:k:w:x:" opt; do
	case $opt in
	n) ncalls=$OPTARG ;;
	r) rate=$OPTARG ;;
	k) runs=$OPTARG ;;
	w) settle=$OPTARG ;;
	x) extra=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-n CALLS] [-r RATE] [-k RUNS] [-w SECONDS] [-x EXTRA] TARGET..." >&2; exit 2; }
command -v sipp >/dev/null || bench_install sip-tester
command -v valgrind >/dev/null || bench_install valgrind
bench_ports_free
sipp_workdir sipinstr
cp "$BENCH/bindings.csv" "$work/bindings.csv"
bench_calls "$work/bindings.csv" "$work/calls.csv"
awk -v n="$extra" 'BEGIN { for (i = 0; i < n; i++)
	printf "%d,%d,%d\n", 12000000000 + i, 16000000000 + i % 10000, 11000000000 + i }' >>"$work/bindings.csv"

# Wrappers put each system under callgrind whatever starts it: sipmask's
# serve (not its import), Kamailio and every process it forks, the floor.
mkdir -p "$work/bin"
wrap() { # wrap NAME REAL [SUBCOMMAND]
	cat >"$work/bin/$1" <<WRAP
#!/usr/bin/env bash
[ -z "${3:-}" ] || [ "\$1" = "${3:-}" ] || exec "$2" "\$@"
exec valgrind --tool=callgrind --trace-children=yes --vgdb=no \\
	--callgrind-out-file="\$CG_DIR/callgrind.out.%p" --log-file="\$CG_DIR/valgrind.%p.log" "$2" "\$@"
WRAP
	chmod +x "$work/bin/$1"
}
real=${SIPMASK_BIN:-$ROOT/target/release/sipmask}
[ -x "$real" ] && { wrap sipmask "$real" serve; export SIPMASK_BIN=$work/bin/sipmask; }
real=$(command -v kamailio || true)
[ -z "$real" ] || wrap kamailio "$real"
if [ -n "${FLOOR_BIN:-}" ] || [ -x "$BENCH/floor/target/release/floor" ]; then
	wrap floor "${FLOOR_BIN:-$BENCH/floor/target/release/floor}"
	export FLOOR_BIN=$work/bin/floor
fi
export PATH=$work/bin:$PATH

# run TARGET DIR CALLS SECONDS: sets ir (all processes), failed, retrans
# and ran (how long the system ran, in seconds).
run() {
	local target=$1 dir=$2 n=$3 secs=$4 t0 uas f r
	mkdir -p "$dir/cg"
	export CG_DIR=$dir/cg
	sipp -sf "$BENCH/sipp/callee.xml" -i 127.0.0.1 -p $UAS_PORT -nostdin -max_socket 60000 \
		>"$dir/callee.out" 2>&1 &
	uas=$!
	pids+=("$uas")
	target_start "$dir" $SUT_PORT "$CALLEE" "$work/bindings.csv" >"$dir/start.log" 2>&1
	[ -z "$DIRECT" ] || { echo "$target: nothing in the middle to count" >&2; return 1; }
	bench_ready 120 || { echo "$target does not answer OPTIONS under valgrind" >&2; return 1; }
	t0=$(date +%s.%N)
	failed=0 retrans=0
	if [ "$n" -gt 0 ]; then
		(cd "$dir" && timeout $((n / rate * 4 + 120)) sipp "127.0.0.1:$SUT_PORT" -sf "$BENCH/sipp/caller.xml" \
			-inf "$work/calls.csv" -i 127.0.0.1 -p $UAC_PORT -r "$rate" -m "$n" -l $((rate * 8 + 10)) \
			-max_socket 60000 -nostdin >caller.out 2>&1) || true
		f=$(sipp_count "Failed call" "$dir/caller.out")
		r=$(sipp_retrans "$dir/caller.out")
		failed=${f:-$n} retrans=$r
		secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" -v w="$settle" 'BEGIN { printf "%.1f", b - a + w }')
	fi
	sleep "$(awk -v a="$t0" -v b="$(date +%s.%N)" -v s="$secs" 'BEGIN { d = a + s - b; printf "%.3f", (d > 0 ? d : 0) }')"
	bench_stop "$dir"
	kill "$uas" 2>/dev/null || true
	wait "$uas" 2>/dev/null || true
	local logs outs
	logs=$(find "$dir/cg" -name 'valgrind.*.log' | wc -l)
	outs=$(grep -l '^totals:' "$dir/cg"/callgrind.out.* 2>/dev/null | wc -l)
	[ "$logs" -gt 0 ] && [ "$logs" = "$outs" ] ||
		{ echo "$target: $logs processes under valgrind, $outs callgrind outputs" >&2; return 1; }
	ir=$(awk '/^totals:/ { s += $2 } END { printf "%.0f", s }' "$dir/cg"/callgrind.out.*)
	ran=$secs
}

fmt='%-10s %3s %6s %6s %7s %6s %14s %14s %10s\n'
# shellcheck disable=SC2059
printf "$fmt" target run calls failed retrans secs total_Ir idle_Ir Ir/call
for target in "$@"; do
	bench_target "$target"
	for k in $(seq "$runs"); do
		run "$target" "$work/$target-$k" "$ncalls" 0 || continue
		busy_ir=$ir busy_failed=$failed busy_retrans=$retrans busy_secs=$ran
		run "$target" "$work/$target-$k-idle" 0 "$busy_secs" || continue
		per=-
		[ "$busy_failed" -gt 0 ] || per=$(((busy_ir - ir) / ncalls))
		# shellcheck disable=SC2059
		printf "$fmt" "$target" "$k" "$ncalls" "$busy_failed" "$busy_retrans" "$busy_secs" "$busy_ir" "$ir" "$per"
	done
done
