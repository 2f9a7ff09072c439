#!/usr/bin/env bash
# Bounded schemathesis run against a live sipmask's /openapi.json: every
# check (--checks all) over the examples, coverage, fuzzing and stateful
# phases. /v1/events (an endless stream) and DELETE /v1/keys/{key_id} (the
# stateful phase would revoke the key the run uses) are left out. Installs schemathesis
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
"$st_bin" --config-file scripts/schemathesis.toml run "http://127.0.0.1:$api/openapi.json" -H "Authorization: Bearer $key" \
	--max-examples "$examples" --seed 1 --exclude-path /v1/events --exclude-path /v1/keys/{key_id} \
	--checks all --phases examples,coverage,fuzzing,stateful
if grep -q panicked "$work/serve.log"; then
	echo "sipmask panicked during the API fuzz run:" >&2
	grep -A5 panicked "$work/serve.log" >&2
	exit 1
fi
