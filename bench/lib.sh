# Shared by compare.sh and instructions.sh; source it. Sets ROOT (the
# checkout) and BENCH (this folder), and the ports the runs use.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
export BENCH_EXTRA=$BENCH # targets/sipmask-registered.sh finds register.xml there
# shellcheck source=../scripts/sipp-lib.sh
source "$ROOT/scripts/sipp-lib.sh"
SUT_PORT=5080 UAS_PORT=5090 UAC_PORT=5061 PROBE_PORT=5062
CALLEE=127.0.0.1:$UAS_PORT

# bench_install PACKAGE...: Debian packages, when missing.
bench_install() {
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# bench_bindings N FILE: N AXB bindings as the README's CSV (caller,
# virtual, callee), the same on every run: A 138..., X 170... spread over
# the pool, B 139...
bench_bindings() {
	awk -v n="$1" 'BEGIN {
		print "caller,virtual,callee"
		for (i = 0; i < n; i++)
			printf "1380%07d,1700%07d,1390%07d\n", i, (i * 7919) % 10000000, i
	}' >"$2"
}

# bench_calls BINDINGS FILE: SIPp's -inf file of the callers and their X.
bench_calls() {
	{ echo SEQUENTIAL; tail -n +2 "$1" | awk -F, '{ print $1 ";" $2 }'; } >"$2"
}

# bench_target NAME: loads targets/NAME.sh (or scripts/bench-targets/NAME.sh).
bench_target() {
	unset -f target_start target_stop target_pids target_ready
	DIRECT="" UAS_AFTER=""
	local f=$BENCH/targets/$1.sh
	[ -f "$f" ] || f=$ROOT/scripts/bench-targets/$1.sh
	[ -f "$f" ] || { echo "no target $1 in bench/targets" >&2; return 1; }
	# shellcheck source=/dev/null
	source "$f"
}

# bench_ports_free: the run's ports are not taken by something else.
bench_ports_free() {
	local busy
	busy=$(ss -Htuln "( sport = :$SUT_PORT or sport = :$UAS_PORT or sport = :$UAC_PORT or sport = :$PROBE_PORT )")
	[ -z "$busy" ] || { echo "ports in use:"; echo "$busy"; return 1; } >&2
}

# bench_wait_up: the system in the middle answers OPTIONS (up to TRIES s).
bench_wait_up() {
	local i tries=${1:-20}
	for i in $(seq "$tries"); do
		sipp "127.0.0.1:$SUT_PORT" -sf "$BENCH/sipp/options.xml" -i 127.0.0.1 -p $PROBE_PORT \
			-m 1 -nr -nostdin >/dev/null 2>&1 && return 0
		sleep 1
	done
	return 1
}

# bench_ready [TRIES]: the target is up: its own target_ready if it has
# one (the floor answers nothing itself), else it answers OPTIONS.
bench_ready() {
	if type target_ready >/dev/null 2>&1; then
		target_ready
	else
		bench_wait_up "$@"
	fi
}

# bench_stop DIR: stops the target run in DIR and waits for its processes
# (up to 30 s, then kill -9).
bench_stop() {
	local left p i alive
	mapfile -t left < <(target_pids "$1" 2>/dev/null)
	target_stop "$1" 2>/dev/null || true
	for i in $(seq 150); do
		alive=0
		for p in "${left[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive -eq 0 ] && return 0
		sleep 0.2
	done
	for p in "${left[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}

# pg_target_db DIR CSV BIN: a PostgreSQL database of its own for a target
# (on SIPMASK_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432),
# with the bindings of CSV imported by BIN; prints its URL.
pg_target_db() {
	local dir=$1 csv=$2 bin=$3
	local server=${SIPMASK_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432}
	local db="sipmask_bench_$$_$RANDOM"
	psql "$server/postgres" -qc "CREATE DATABASE $db" >/dev/null
	echo "$server/postgres $db" >"$dir/pgdb"
	"$bin" bindings import --database-url "$server/$db" --data-dir "$dir/data" "$csv" >"$dir/import.log" 2>&1
	echo "$server/$db"
}

# pg_target_drop DIR: drops the database pg_target_db made for DIR.
pg_target_drop() {
	[ -f "$1/pgdb" ] || return 0
	local admin db
	read -r admin db <"$1/pgdb"
	psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}

# sipmask_bin: the sipmask a target runs (SIPMASK_BIN, else
# target/release/sipmask under the current directory), or says how to get
# one.
sipmask_bin() {
	local bin=${SIPMASK_BIN:-$PWD/target/release/sipmask}
	[ -x "$bin" ] || { echo "no sipmask at $bin: cargo build --release, or set SIPMASK_BIN" >&2; return 1; }
	echo "$bin"
}
