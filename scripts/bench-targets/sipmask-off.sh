# Target: sipmask with [media] mode = "off", built from the project checkout (SIPMASK_BIN, or
# target/release/sipmask under the current directory).
# Uses the command-line contract that the project's README documents:
#   sipmask bindings import --data-dir DIR FILE.csv   (header caller,virtual,callee)
#   sipmask serve --data-dir DIR --listen ADDR --trunk ADDR
target_start() {
	printf "[media]\nmode = \"off\"\n" >"$1/off.toml"
	local dir=$1 port=$2 callee=$3 csv=$4
	local bin
	bin=$(sipmask_bin) || return 1
	"$bin" bindings import --data-dir "$dir/data" "$csv" >"$dir/import.log" 2>&1
	"$bin" serve --config "$dir/off.toml" --data-dir "$dir/data" --listen "127.0.0.1:$port" --trunk "$callee" \
		>"$dir/sipmask.log" 2>&1 &
	echo $! >"$dir/sipmask.pid"
}
target_stop() {
	local dir=$1
	[ -f "$dir/sipmask.pid" ] && kill "$(cat "$dir/sipmask.pid")" 2>/dev/null || true
}
target_pids() { cat "$1/sipmask.pid" 2>/dev/null || true; }
