# Target: sipmask with its data in PostgreSQL (a database of its own, made
# for the run on SIPMASK_TEST_POSTGRES, default
# postgresql://postgres@127.0.0.1:5432, and dropped at the end), otherwise
# as the sipmask target: the bindings imported from the CSV, calls to real
# numbers out through the trunk (the callee). Needs psql.
target_start() {
	local dir=$1 port=$2 callee=$3 csv=$4
	local bin
	bin=$(sipmask_bin) || return 1
	local url
	url=$(pg_target_db "$dir" "$csv" "$bin")
	"$bin" serve --database-url "$url" --node bench --data-dir "$dir/data" \
		--listen "127.0.0.1:$port" --trunk "$callee" \
		--api-listen 127.0.0.1:0 ${SIPMASK_ARGS:-} >"$dir/sipmask.log" 2>&1 &
	echo $! >"$dir/sipmask.pid"
}
target_stop() {
	local pid
	pid=$(cat "$1/sipmask.pid" 2>/dev/null || true)
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	pg_target_drop "$1"
}
target_pids() { cat "$1/sipmask.pid" 2>/dev/null || true; }
