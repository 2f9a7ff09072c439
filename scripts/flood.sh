#!/usr/bin/env bash
# Legitimate calls under a flood: measures INVITE->200 latency (p50, p99)
# of calls from a trusted source, first alone, then while another source
# floods sipmask with INVITEs for unknown numbers (SIPp, FLOOD_RATE a
# second) and holds idle and slow TCP connections.
#
# usage: scripts/flood.sh [SECONDS] [CALL_RATE] [FLOOD_RATE]   (10 100 5000)
# needs: sipp, a release build (cargo build --release) or SIPMASK_BIN,
# and bench/ (its SIPp scenarios and bindings).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} rate=${2:-100} flood=${3:-5000}
bin=${SIPMASK_BIN:-$PWD/target/release/sipmask}
bench=$(cd "${BENCH:-bench}" && pwd)
[ -x "$bin" ] || { echo "no sipmask at $bin: cargo build --release" >&2; exit 1; }
work=$(mktemp -d /tmp/sipmask-flood.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# The callee (the trunk) on 127.0.0.3, sipmask on 127.0.0.1, the caller on
# 127.0.0.2 (trusted), the flood from 127.0.0.4 (a stranger).
"$bin" bindings import --data-dir "$work/data" "$bench/bindings.csv" >/dev/null
{ echo SEQUENTIAL; tail -n +2 "$bench/bindings.csv" | awk -F, '{ print $1 ";" $2 }'; } >"$work/calls.csv"
sipp -sf "$bench/sipp/callee.xml" -i 127.0.0.3 -p 5090 -nostdin -max_socket 60000 \
	>"$work/uas.out" 2>&1 &
pids+=($!)
"$bin" serve --data-dir "$work/data" --listen 127.0.0.1:5060 --trunk 127.0.0.3:5090 \
	--api-listen 127.0.0.1:0 --trust 127.0.0.2/32 >"$work/sipmask.log" 2>&1 &
pids+=($!)
sleep 2

pct() { # pct FILE P -> P-th percentile of the response times (ms)
	awk -F';' 'NR>1 && $2 != "" { print $2 }' "$1" | sort -n | awk -v p="$2" \
		'{ v[NR]=$1 } END { if (NR==0) { print "-"; exit } i=int(NR*p/100); if (i<1) i=1; printf "%.2f", v[i] }'
}

calls() { # calls NAME: legitimate calls for $secs s; prints a row
	local out="$work/$1"; mkdir -p "$out"
	(cd "$out" && timeout $((secs * 4 + 30)) sipp 127.0.0.1:5060 -sf "$bench/sipp/caller.xml" \
		-inf "$work/calls.csv" -i 127.0.0.2 -p 5070 -r "$rate" -m $((rate * secs)) \
		-nostdin -trace_rtt -rtt_freq 1 >"$out/stdout" 2>&1) || true
	local ok bad rtt
	ok=$(awk -F'|' '/Successful call/ { gsub(/ /, "", $3); print $3 }' "$out/stdout" | tail -1)
	bad=$(awk -F'|' '/Failed call/ { gsub(/ /, "", $3); print $3 }' "$out/stdout" | tail -1)
	rtt=$(ls "$out"/*_rtt.csv 2>/dev/null | head -1)
	printf '%-12s %6s %7s %7s %8s %8s\n' "$1" "$rate" "${ok:-0}" "${bad:--}" \
		"$( [ -n "$rtt" ] && pct "$rtt" 50 || echo -)" "$( [ -n "$rtt" ] && pct "$rtt" 99 || echo -)"
}

printf '%-12s %6s %7s %7s %8s %8s\n' run rate ok failed p50_ms p99_ms
calls alone

# The flood: INVITEs for a number nobody has, from one source, plus TCP
# connections that idle or dribble.
cat >"$work/flood.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="flood">
  <send><![CDATA[
INVITE sip:17099999999@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800000000@[local_ip]>;tag=[call_number]
To: <sip:17099999999@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 INVITE
Max-Forwards: 70
Content-Length: 0

  ]]></send>
</scenario>
EOF
(cd "$work" && timeout $((secs + 20)) sipp 127.0.0.1:5060 -sf "$work/flood.xml" -i 127.0.0.4 -p 5080 \
	-r "$flood" -m $((flood * (secs + 5))) -nostdin >"$work/flood.out" 2>&1) &
pids+=($!)
python3 - "$secs" <<'PY' &
import socket, sys, time
held = []
for i in range(200):
    try:
        s = socket.socket(); s.bind(("127.0.0.5", 0)); s.connect(("127.0.0.1", 5060)); held.append(s)
    except OSError:
        pass
slow = []
for i in range(50):
    try:
        s = socket.socket(); s.bind(("127.0.0.6", 0)); s.connect(("127.0.0.1", 5060))
        s.send(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 16000\r\n\r\n"); slow.append(s)
    except OSError:
        pass
end = time.time() + int(sys.argv[1]) + 10
while time.time() < end:
    for s in slow:
        try: s.send(b"x")
        except OSError: pass
    time.sleep(1)
PY
pids+=($!)
sleep 2
calls flooded
api=$(grep -o 'local=[0-9.:]*' "$work/sipmask.log" | head -1 | cut -d= -f2)
echo
curl -s "http://$api/metrics" | grep -E '^sipmask_(requests_refused_total|source_bans_total|tcp_connections_ended_total)'
echo "sipmask log: $(wc -c <"$work/sipmask.log") bytes; work files: $work"
