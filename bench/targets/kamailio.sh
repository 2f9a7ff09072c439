# Target: Kamailio (Debian's) as the masking proxy of kamailio/masking.cfg,
# its htable loaded from the same bindings.
KAMAILIO_CFG=$(cd "$(dirname "${BASH_SOURCE[0]}")/../kamailio" && pwd)/masking.cfg
target_start() {
	local dir=$1 port=$2 callee=$3 csv=$4
	command -v kamailio >/dev/null || { apt-get update -qq && apt-get install -y -qq kamailio >/dev/null; }
	printf 'table_name(str) table_version(int)\nbindings:1\n' >"$dir/version"
	{
		echo "key_name(str) key_type(int) value_type(int) key_value(str) expires(int)"
		# AXB rows as "A:X" (the colon escaped for db_text), AX rows as "X".
		tail -n +2 "$csv" | awk -F, '{ k = ($1 == "" ? $2 : $1 "\\:" $2); printf "%s:0:0:%s:0\n", k, $3 }'
	} >"$dir/bindings"
	sed -e "s#@LISTEN@#127.0.0.1:$port#; s#@CALLEE@#$callee#; s#@DIR@#$dir#g" \
		"$KAMAILIO_CFG" >"$dir/kamailio.cfg"
	kamailio -f "$dir/kamailio.cfg" -P "$dir/kamailio.pid" -m 512 -M 32 -E 2>"$dir/kamailio.log"
}
target_stop() { kill "$(cat "$1/kamailio.pid" 2>/dev/null)" 2>/dev/null || true; }
target_pids() {
	local main
	main=$(cat "$1/kamailio.pid" 2>/dev/null) || return 0
	echo "$main"
	pgrep -P "$main" || true
}
