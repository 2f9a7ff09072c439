# Target: the byte relay of floor/ (no parsing, no state): what the kernel's
# UDP path alone costs an element in the middle. Not SIP-correct.
FLOOR_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../floor" && pwd)
target_start() {
	local dir=$1 port=$2 callee=$3
	local bin=${FLOOR_BIN:-}
	if [ -z "$bin" ]; then
		cargo build --release -q --manifest-path "$FLOOR_SRC/Cargo.toml" \
			--target-dir "$FLOOR_SRC/target" || return 1
		bin=$FLOOR_SRC/target/release/floor
	fi
	"$bin" "127.0.0.1:$port" "$callee" >"$dir/floor.log" 2>&1 &
	echo $! >"$dir/floor.pid"
}
target_stop() { kill "$(cat "$1/floor.pid" 2>/dev/null)" 2>/dev/null || true; }
target_pids() { cat "$1/floor.pid" 2>/dev/null || true; }
# It answers nothing itself (an OPTIONS would go on to the callee).
target_ready() { sleep 1; }
