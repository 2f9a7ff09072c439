# Target: sipmask as the README runs it (SIPMASK_BIN, else
# target/release/sipmask under the current directory: run from the checkout): the bindings imported from the
# CSV, calls to real numbers out through the trunk (the callee).
target_start() {
	local dir=$1 port=$2 callee=$3 csv=$4
	local bin
	bin=$(sipmask_bin) || return 1
	"$bin" bindings import --data-dir "$dir/data" "$csv" >"$dir/import.log" 2>&1
	"$bin" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" --trunk "$callee" \
		--api-listen 127.0.0.1:0 ${SIPMASK_ARGS:-} >"$dir/sipmask.log" 2>&1 &
	echo $! >"$dir/sipmask.pid"
}
target_stop() { kill "$(cat "$1/sipmask.pid" 2>/dev/null)" 2>/dev/null || true; }
target_pids() { cat "$1/sipmask.pid" 2>/dev/null || true; }
