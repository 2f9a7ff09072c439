#!/usr/bin/env bash
# Runs every check and test of sipmask on a fresh machine: installs SIPp
# (Debian's sip-tester), baresip and Linphone (linphone-cli: two real,
# independent softphones), tshark and curl when missing,
# then format, lints, unit and
# whole-system tests (real SIP and HTTP over loopback sockets), then a
# bounded schemathesis run against the HTTP API (installed from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
missing=""
command -v sipp >/dev/null 2>&1 || missing+=" sip-tester"
command -v curl >/dev/null 2>&1 || missing+=" curl"
command -v baresip >/dev/null 2>&1 || missing+=" baresip"
command -v linphone-daemon >/dev/null 2>&1 || missing+=" linphone-cli"
command -v dumpcap >/dev/null 2>&1 || missing+=" tshark"
command -v kamailio >/dev/null 2>&1 || missing+=" kamailio"
if [ -n "$missing" ]; then
	echo "installing$missing..."
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --all-targets 2>&1 | tee "$log"
cargo build
bash scripts/fuzz-api.sh "${CARGO_TARGET_DIR:-target}/debug/sipmask" 100

passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i == "passed;") s += $(i - 1) } END { print s + 0 }' "$log")
failed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($i == "failed;") s += $(i - 1) } END { print s + 0 }' "$log")
echo
echo "tests: $passed passed, $failed failed"
