# Target: two sipmask nodes side by side on this host, sharing the SIP port
# (SO_REUSEPORT) and one data dir, with their data in one PostgreSQL
# database (made for the run on SIPMASK_TEST_POSTGRES, default
# postgresql://postgres@127.0.0.1:5432, and dropped at the end). The kernel
# spreads datagrams over the two by their source; each hands the other what
# is its own. Run with SIPP_CALLER_ARGS="-t un -max_socket 15000" so that calls come from
# many sources. Needs psql.
target_start() {
	local dir=$1 port=$2 callee=$3 csv=$4
	local bin
	bin=$(sipmask_bin) || return 1
	local url
	url=$(pg_target_db "$dir" "$csv" "$bin")
	: >"$dir/sipmask.pid"
	for node in one two; do
		"$bin" serve --database-url "$url" --node "$node" --data-dir "$dir/data" \
			--listen "127.0.0.1:$port" --trunk "$callee" \
			--api-listen 127.0.0.1:0 ${SIPMASK_ARGS:-} >"$dir/sipmask-$node.log" 2>&1 &
		echo $! >>"$dir/sipmask.pid"
		# The second finds the first in the data dir and shares its port.
		sleep 1
	done
}
target_stop() {
	local pid
	while read -r pid; do
		[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	done <"$1/sipmask.pid"
	while read -r pid; do
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	done <"$1/sipmask.pid"
	pg_target_drop "$1"
}
target_pids() { cat "$1/sipmask.pid" 2>/dev/null || true; }
