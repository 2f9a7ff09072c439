#!/usr/bin/env bash
# What a large binding table costs (issue 32): N AXB bindings generated
# (each with its own caller and callee, X from a pool of 10,000 numbers),
# imported with `sipmask bindings import` (timed), then `sipmask serve`
# started on them with the API off: the time until it answers SIP
# (an OPTIONS, sent every 20 ms from its start), and its RSS then minus
# an empty server's, per binding. The first start reads the store; it
# is stopped with SIGTERM (which saves the table) and started again: the
# restart's time to ready. SIPMASK_BIN as for the other targets.
# With -u URL (a PostgreSQL server, e.g. postgresql://postgres@127.0.0.1/test)
# the bindings go to a database made for the run there instead of SQLite
# (and dropped after it); a restart reads that database again, as a
# cluster node does.
#
#   bench/table.sh [-n N] [-u URL]
# shellcheck source=lib.sh
source "$(cd "$(dirname "$0")" && pwd)/lib.sh"
n=1000000 url=
while getopts "n:u:" opt; do
	case $opt in
	n) n=$OPTARG ;;
	u) url=$OPTARG ;;
	*) exit 2 ;;
	esac
done
bin=$(sipmask_bin) || exit 1
work=$(mktemp -d /tmp/sipmask-table.XXXXXX)
db=
# store DIR: where a run's bindings live: DIR's SQLite, or the run's database.
store() {
	if [ -n "$db" ]; then echo "--database-url ${url%/*}/$db"; else echo "--data-dir $1"; fi
}
if [ -n "$url" ]; then
	db=sipmask_table_$$
	psql "$url" -qc "CREATE DATABASE $db" >/dev/null
fi
cleanup() {
	kill "${pid:-}" 2>/dev/null
	[ -z "$db" ] || psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
awk -v n="$n" 'BEGIN { print "caller,virtual,callee"
	for (i = 0; i < n; i++) printf "%d,%d,%d\n", 13000000000 + i, 17000000000 + i % 10000, 15000000000 + i }' \
	>"$work/bindings.csv"

# ready PORT: seconds from now until something answers an OPTIONS on PORT.
ready() {
	python3 - "$1" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.02)
me = s.getsockname()
t0 = time.monotonic()
while time.monotonic() - t0 < 600:
    msg = (f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{me[1]};branch=z9hG4bK{time.monotonic_ns()}\r\n"
           f"From: <sip:bench@127.0.0.1>;tag=b\r\nTo: <sip:ping@127.0.0.1>\r\n"
           f"Call-ID: ready-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        s.recvfrom(65536)
        print(f"{time.monotonic() - t0:.2f}")
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
EOF
}

# serve DIR: starts serve on DIR's data; prints seconds to ready and RSS (KiB).
serve() {
	local port
	port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# shellcheck disable=SC2046
	"$bin" serve $(store "$1") --listen "127.0.0.1:$port" --api-listen "" >"$1.log" 2>&1 &
	pid=$!
	local secs
	secs=$(ready "$port") || { echo "serve never answered: $(tail -3 "$1.log")" >&2; exit 1; }
	sleep 1
	grep -o "bindings loaded.*" "$1.log" >&2 || true
	local rss
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	grep -o "table saved.*" "$1.log" >&2 || true
	echo "$secs $rss"
}

mkdir -p "$work/empty" "$work/full"
# The empty server: SQLite either way (a database holds one table).
read -r _ empty < <(db='' serve "$work/empty")
t0=$(date +%s.%N)
# shellcheck disable=SC2046
"$bin" bindings import $(store "$work/full") "$work/bindings.csv" >"$work/import.log" 2>&1 ||
	{ echo "import failed: $(tail -3 "$work/import.log")" >&2; exit 1; }
t1=$(date +%s.%N)
read -r secs full < <(serve "$work/full")
read -r again _ < <(serve "$work/full")
how="saved table"
[ -z "$db" ] || how="PostgreSQL again"
awk -v how="$how" -v n="$n" -v imp="$(echo "$t1 - $t0" | bc)" -v secs="$secs" -v again="$again" -v e="$empty" -v f="$full" 'BEGIN {
	printf "bindings %d: import %.1f s; serve ready in %.2f s from the store, %.2f s on restart (%s); RSS %.0f MiB (empty %.0f MiB): %.0f bytes a binding\n",
		n, imp, secs, again, how, f / 1024, e / 1024, (f - e) * 1024 / n }'
