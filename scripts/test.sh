#!/usr/bin/env bash
# Runs every check and test of sipmask on a fresh machine: installs SIPp
# (Debian's sip-tester) when missing, then format, lints, unit and
# whole-system tests (real SIP over loopback sockets).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sipp >/dev/null 2>&1; then
	echo "installing sip-tester (SIPp)..."
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq sip-tester >/dev/null
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
