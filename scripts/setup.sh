#!/usr/bin/env bash
# Prepares a fresh Debian machine to build Stockline. Idempotent and quick when
# everything is already there.
#
# - libclang-dev: rust-rocksdb runs bindgen, which needs libclang ("Unable to find
#   libclang" otherwise).
# - libssl-dev, pkg-config: librdkafka is built with TLS so production clusters
#   (SASL_SSL) can be reached.
# - g++ and make: RocksDB's C++ sources and librdkafka's own configure script.
#
# Usage: scripts/setup.sh [--with-tansu]
#   --with-tansu  also install the tansu broker the integration tests start
#                 (cached under ~/.cache/stockline; minutes on a cold cache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

missing=()
# libclang itself (libclang.so.N or libclang-N.so.M), not libclang-cpp.so.N, which
# some images carry without it and which bindgen cannot use.
have_libclang() {
    local dir
    for dir in /usr/lib/llvm-*/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu; do
        if compgen -G "$dir/libclang.so*" >/dev/null \
            || compgen -G "$dir/libclang-[0-9]*.so*" >/dev/null; then
            return 0
        fi
    done
    return 1
}
have_libclang || missing+=(libclang-dev)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v g++ >/dev/null || missing+=(g++)
command -v make >/dev/null || missing+=(make)

if ((${#missing[@]})); then
    echo "installing system packages: ${missing[*]}"
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ "${1:-}" == "--with-tansu" ]]; then
    "$here/install-tansu.sh"
fi
