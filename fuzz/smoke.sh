#!/usr/bin/env bash
# Smoke run for CI: builds every fuzz target, then runs each on its checked-in corpus and seeds plus
# 2000 mutated inputs. The runs take well under a minute in all; the first build takes a few minutes.
# New inputs go to a scratch directory, so the checked-in corpus is left as it is.
set -euo pipefail
cd "$(dirname "$0")"
cargo +nightly fuzz build
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in $(cargo +nightly fuzz list); do
    mkdir -p "$scratch/$t"
    if cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" "seeds/$t" -- -runs=2000 -timeout=10 \
        >"$scratch/$t.log" 2>&1; then
        echo "ok   $t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$scratch/$t.log")"
    else
        cat "$scratch/$t.log"
        echo "FAIL $t"
        exit 1
    fi
done
echo "all fuzz targets passed the smoke run"
