# Target: sipmask calling every callee through a registered contact instead
# of the trunk. Every binding's callee is the app account "callee", which
# registers (digest, MD5) from the SIPp callee's own address before the
# callee starts, so each call is: binding lookup, registrar lookup, INVITE
# to the contact. Needs the harness patched by scripts/bench-registrar.sh
# (UAS_AFTER: the callee starts after target_start).
UAS_AFTER=1
target_start() {
	local dir=$1 port=$2 callee=$3 csv=$4
	local bin
	bin=$(sipmask_bin) || return 1
	printf '[registrar]\nalgorithms = ["MD5"]\n' >"$dir/sipmask.toml"
	awk -F, 'NR == 1 { print; next } { print $1 "," $2 ",sip:callee@bench" }' "$csv" >"$dir/bindings.csv"
	"$bin" accounts add --data-dir "$dir/data" callee --password bench-callee-pw >"$dir/import.log" 2>&1
	"$bin" bindings import --data-dir "$dir/data" "$dir/bindings.csv" >>"$dir/import.log" 2>&1
	"$bin" serve --config "$dir/sipmask.toml" --data-dir "$dir/data" --listen "127.0.0.1:$port" \
		--trunk "$callee" >"$dir/sipmask.log" 2>&1 &
	echo $! >"$dir/sipmask.pid"
	sleep 1
	(cd "$dir" && sipp "127.0.0.1:$port" -sf "$BENCH_EXTRA/register.xml" -s callee -au callee \
		-ap bench-callee-pw -i 127.0.0.1 -p "${callee##*:}" -m 1 -nostdin >"$dir/register.log" 2>&1)
}
target_stop() {
	local dir=$1
	[ -f "$dir/sipmask.pid" ] && kill "$(cat "$dir/sipmask.pid")" 2>/dev/null || true
}
target_pids() { cat "$1/sipmask.pid" 2>/dev/null || true; }
