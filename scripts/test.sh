#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: system packages, the tansu broker
# the integration tests start, then every test of the workspace (unit, property,
# golden, integration against the embedded broker and a real tansu broker, crash
# tests, HTTP end-to-end). Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-tansu
cargo test --workspace --locked "$@"
