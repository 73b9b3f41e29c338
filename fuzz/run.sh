#!/usr/bin/env bash
# A short run of every fuzz target (default 30 s each): `fuzz/run.sh [SECONDS]`.
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain, or RUSTC_BOOTSTRAP=1
# with stable (the sanitizer flags are nightly features). The seeds in fuzz/corpus/TARGET are
# read only; what the fuzzer finds goes to fuzz/corpus-work/TARGET (not in git), crashes to
# fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi
for target in token_parse scenario credentials http1; do
    echo "== fuzz $target for ${seconds}s"
    mkdir -p "corpus-work/$target"
    cargo "${toolchain[@]}" fuzz run "$target" "corpus-work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
done
