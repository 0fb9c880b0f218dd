#!/usr/bin/env bash
# Installs tansu 0.6.0 (a Kafka-API broker from crates.io) with its in-memory
# storage engine, for the Kafka tests and benchmarks (crates/kafka, module
# `tansu`). Idempotent: does nothing when the binary is already there.
#
# Where: ${XDG_CACHE_HOME:-$HOME/.cache}/stockline/tansu-0.6.0-dynostore/bin/tansu,
# the path TansuBroker::start() looks at (or set STOCKLINE_TANSU_BIN).
#
# Why a cache and its own target dir: a cold build takes several CPU-minutes
# (tansu pulls in a large dependency tree); building it in the cache, with a
# target dir of its own, keeps the workspace's target dir untouched and lets
# later runs (CI on a kept machine, the next session) reuse the binary. The
# target dir is removed after a successful install (disk, not time: a CI run
# once failed with a full disk).
#
# Default features contain no storage engine at all (the broker then fails at
# start); `dynostore` provides `memory://`.
set -euo pipefail

version="0.6.0"
cache="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}"
root="$cache/stockline/tansu-$version-dynostore"
bin="$root/bin/tansu"
target_dir="$cache/stockline/tansu-target"

if [[ -x "$bin" ]]; then
    echo "tansu $version already installed: $bin"
    exit 0
fi

mkdir -p "$root" "$target_dir"
# Serialise concurrent installs (two CI jobs, a developer and a test run):
# the second one waits, then finds the binary.
exec 9>"$root.lock"
flock 9
if [[ -x "$bin" ]]; then
    echo "tansu $version installed meanwhile: $bin"
    exit 0
fi

echo "installing tansu $version into $root (several minutes on a cold cache)..."
cargo install tansu \
    --version "$version" \
    --locked \
    --features dynostore \
    --root "$root" \
    --target-dir "$target_dir"

"$bin" --version || true
# The build's target dir (about 1.3 GiB) is of no further use once the binary
# is installed: the check at the top returns before any build.
rm -rf "$target_dir"
echo "tansu installed: $bin"
