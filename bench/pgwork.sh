#!/usr/bin/env bash
# What a sipmask node on PostgreSQL asks of the database per call: one
# step of calls (bench/compare.sh's scenario, -r RATE calls/s for -s
# SECONDS) through the sipmask-pg target, with PostgreSQL's own counters
# of its database (pg_stat_database: transactions committed, rows
# inserted, updated, deleted) read before and after and divided by the
# calls. The bench's bindings count nothing: their calls make no round
# trip on the call path; what the database does is the writer's group
# commits (records, usage, live-call checkpoints). With -c every binding
# counts its calls ([defaults] max_calls, far above what the run uses):
# each call then reserves its use at the INVITE, one statement and one
# commit of its own.
#
#   bench/pgwork.sh [-c] [-r RATE] [-s SECONDS]
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
rate=500 secs=10 counted=""
while getopts "cr:s:" opt; do
	case $opt in
	c) counted=1 ;;
	r) rate=$OPTARG ;;
	s) secs=$OPTARG ;;
	*) exit 2 ;;
	esac
done
command -v sipp >/dev/null || bench_install sip-tester
bench_ports_free
sipp_workdir sippg
cp "$BENCH/bindings.csv" "$work/bindings.csv"
bench_calls "$work/bindings.csv" "$work/calls.csv"
bench_target sipmask-pg
dir=$work/pg
mkdir -p "$dir"
if [ -n "$counted" ]; then
	printf '[defaults]\nmax_calls = 1000000000\n' >"$dir/counted.toml"
	export SIPMASK_ARGS="${SIPMASK_ARGS:-} --config $dir/counted.toml"
fi
sipp -sf "$BENCH/sipp/callee.xml" -i 127.0.0.1 -p $UAS_PORT -nostdin -max_socket 60000 \
	>"$dir/callee.out" 2>&1 &
pids+=($!)
target_start "$dir" $SUT_PORT "$CALLEE" "$work/bindings.csv" >"$dir/start.log" 2>&1
mapfile -t started < <(target_pids "$dir")
pids+=("${started[@]}")
bench_ready || { echo "sipmask-pg does not answer OPTIONS" >&2; exit 1; }
read -r admin db <"$dir/pgdb"
stats() {
	psql "$admin" -Atc "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted
		FROM pg_stat_database WHERE datname = '$db'" | tr '|' ' '
}
sleep 2
read -r x0 i0 u0 d0 < <(stats)
(cd "$dir" && timeout $((secs * 4 + 30)) sipp 127.0.0.1:$SUT_PORT -sf "$BENCH/sipp/caller.xml" \
	-inf "$work/calls.csv" -i 127.0.0.1 -p $UAC_PORT -r "$rate" -m $((rate * secs)) \
	-l $((rate * 8)) -max_socket 60000 -nostdin >stdout 2>&1) || true
sleep 3 # the last records are committed; the statistics collector reports
read -r x1 i1 u1 d1 < <(stats)
ok=$(sipp_count "Successful call" "$dir/stdout")
ok=${ok:-0}
[ "$ok" -gt 0 ] || { echo "no successful call" >&2; exit 1; }
awk -v c="$ok" -v x=$((x1 - x0)) -v i=$((i1 - i0)) -v u=$((u1 - u0)) -v d=$((d1 - d0)) 'BEGIN {
	printf "calls %d at %s/s'"${counted:+, counted}"': per call %.3f transactions, %.2f rows inserted, %.2f updated, %.2f deleted\n",
		c, "'"$rate"'", x / c, i / c, u / c, d / c }'
bench_stop "$dir"
