#!/usr/bin/env bash
# The main job on a fresh machine: builds Stockline and runs everything on the
# embedded defaults (in-process broker, projector, query service, simulated
# traffic). Ctrl-C stops it cleanly. Extra arguments go to `stockline up`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -p stockline -- up "$@"
