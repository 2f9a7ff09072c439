#!/usr/bin/env bash
# Propagation of a change between two sipmask nodes on one PostgreSQL
# database: 200 identifiers made through node one's API, each timed from
# the creating request's answer until node two's API shows it. Needs the
# PostgreSQL of this project's machines (SIPMASK_TEST_POSTGRES, default
# postgresql://postgres@127.0.0.1:5432); makes and drops a database.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test cluster -- --ignored --nocapture propagation 2>&1 \
  | grep -E '^propagation|test result'
