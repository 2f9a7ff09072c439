#!/usr/bin/env bash
# Bounded schemathesis run against a live sipmask's /openapi.json: no 5xx,
# every status, content type and body as documented. Installs schemathesis
# from PyPI when missing. Usage: scripts/fuzz-api.sh [SIPMASK_BINARY] [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/sipmask}
examples=${2:-25}
st_bin=$(command -v st || true)
if [ -z "$st_bin" ]; then
	python3 -m pip install -q schemathesis==4.32.5
	# pip puts the `st` script beside the interpreter, which may not be on PATH yet.
	st_bin=$(python3 -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "st"))')
fi
work=$(mktemp -d)
server=""
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
key=$("$bin" tenants add --data-dir "$work/data" fuzz)
# Ephemeral ports: ask the OS for free ones.
read -r sip api < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
"$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$sip" --api-listen "127.0.0.1:$api" \
	--trunk 127.0.0.1:9 >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 50); do
	curl -fs "http://127.0.0.1:$api/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$st_bin" run "http://127.0.0.1:$api/openapi.json" -H "Authorization: Bearer $key" \
	--max-examples "$examples" --seed 1 --exclude-path /v1/events \
	-c not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
if grep -q panicked "$work/serve.log"; then
	echo "sipmask panicked during the API fuzz run:" >&2
	grep -A5 panicked "$work/serve.log" >&2
	exit 1
fi
