#!/usr/bin/env bash
# Instructions executed per request by the whole service, under callgrind: the figure that stays
# put on a noisy shared machine (wall-clock ratios from bench.sh move by ±10% there).
#
#   scripts/instructions.sh [BINARY]     # default: target/release/webhook-listener (built if missing)
#
# Runs the binary twice under `valgrind --tool=callgrind` (fsync off, JSON log, the 1.6 kB NetBox
# fixture), once for N1 and once for N2 signed requests from scripts/fixed_load.py, and prints
# (Ir(N2) - Ir(N1)) / (N2 - N1): start-up and shutdown cancel out. Knobs: N1 (2000), N2 (4000),
# LOG_FORMAT (json), EXTRA_CONFIG (TOML appended at the top level, e.g. a [spool] and [[sinks]]),
# KEEP_PROFILES (a directory: the two callgrind files are copied there, for callgrind_annotate).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-$ROOT/target/release/webhook-listener}
N1=${N1:-2000} N2=${N2:-4000}
BODY=$ROOT/tests/fixtures/netbox/v4.6.8-created.json
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is required (apt-get install valgrind)" >&2; exit 1; }
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release --quiet --bin webhook-listener)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

run() {
    local n=$1 port out
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat > "$WORK/c.toml" <<TOML
listen = "127.0.0.1:$port"
${EXTRA_CONFIG:-}
[log]
file = "$WORK/events-$n.log"
fsync = false
format = "${LOG_FORMAT:-json}"
[[hooks]]
path = "/webhook/"
provider = "netbox"
secrets = ["my-webhook-secret"]
TOML
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$n" "$BIN" --config "$WORK/c.toml" 2>"$WORK/err.$n" &
    local pid=$!
    for _ in $(seq 1 600); do
        grep -q "serving\|listening" "$WORK/err.$n" 2>/dev/null && break
        sleep 0.1
    done
    python3 "$ROOT/scripts/fixed_load.py" "http://127.0.0.1:$port/webhook/" my-webhook-secret "$BODY" "$n" 4 >/dev/null
    kill -TERM "$pid"; wait "$pid" || true
    grep -m1 "^summary:" "$WORK/cg.$n" | awk '{print $2}'
}
a=$(run "$N1"); b=$(run "$N2")
if [ -n "${KEEP_PROFILES:-}" ]; then mkdir -p "$KEEP_PROFILES" && cp "$WORK/cg.$N1" "$WORK/cg.$N2" "$KEEP_PROFILES/"; fi
echo "Ir($N1)=$a Ir($N2)=$b per-request=$(( (b - a) / (N2 - N1) ))"
