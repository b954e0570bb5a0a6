#!/usr/bin/env bash
# Events/s through an exec sink running /bin/true, at concurrency 1 and 8, with the intake rate
# beside it (the same server with no sink, driven the same way), beside scripts/bench.sh.
#
#   scripts/bench_exec.sh
#
# Per run: `wrk -t1 -c32 -d5s` POSTs the signed NetBox fixture to our server (fsync = true); then it
# waits until the sink's lag_events is 0 and reports delivered / (time from the burst's start to
# lag 0). The event log is checked to hold one line per acknowledged request. Needs wrk (installed
# from Debian when missing; root), curl, openssl, python3. Knobs: BENCH_DURATION (5s),
# BENCH_CONNECTIONS (32), BENCH_CONCURRENCY ("1 8"), BENCH_RUNS (2), TMPDIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-32}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8}
RUNS=${BENCH_RUNS:-2}
SECRET=my-webhook-secret

BENCH_NAME=bench_exec.sh
# shellcheck source=bench-common.sh
. "$ROOT/scripts/bench-common.sh"
require curl openssl python3 cargo
build
scratch webhook-bench-exec
netbox_post

# start NAME SINK_TOML: sets PID, URL, HEALTH, LOG.
start() {
    local name=$1 port i
    port=$(free_port)
    LOG=$WORK/$name.log
    {
        printf 'listen = "127.0.0.1:%s"\n\n[admin]\nlisten = ""\n\n[log]\nfile = "%s"\nformat = "json"\n\n' "$port" "$LOG"
        printf '[spool]\ndir = "%s"\n\n' "$WORK/$name.spool"
        printf '[[hooks]]\npath = "/webhook/"\nprovider = "netbox"\nsecrets = ["literal:%s"]\n\n%s\n' "$SECRET" "$2"
    } >"$WORK/$name.toml"
    RUST_LOG=warn "$OURS" --config "$WORK/$name.toml" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$!
    PIDS+=("$PID")
    URL=http://127.0.0.1:$port/webhook/
    HEALTH=http://127.0.0.1:$port/healthz
    for ((i = 0; i < 300; i++)); do
        kill -0 "$PID" 2>/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$HEALTH" || true) == 200 ]] && return 0
        sleep 0.1
    done
    echo "bench_exec.sh: $name did not start" >&2
    exit 1
}

# drive URL: sets RPS and OK (2xx answered).
drive() {
    local out
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -s "$WORK/post.lua" "$1")
    RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
    OK=$(awk '/^BENCH/ { split($2, a, "="); split($3, b, "="); print a[2] - b[2] }' <<<"$out")
}

# delivered, lag: from /healthz (the one sink).
sink_field() {
    python3 -c 'import json,sys,urllib.request; h=json.load(urllib.request.urlopen(sys.argv[1])); print(h["sinks"][0][sys.argv[2]])' "$HEALTH" "$1"
}
wait_lag_zero() {
    python3 -c '
import json, sys, time, urllib.request
url, t0 = sys.argv[1], time.monotonic()
while time.monotonic() - t0 < 600:
    if json.load(urllib.request.urlopen(url))["sinks"][0]["lag_events"] == 0:
        sys.exit(0)
    time.sleep(0.05)
sys.exit("lag did not reach 0 in 600 s")' "$HEALTH"
}

RESULTS=$WORK/results.tsv # concurrency run intake_rps delivered seconds events_per_s
: >"$RESULTS"
log "no sink (the intake rate to compare with)"
start none ""
for ((run = 1; run <= RUNS; run++)); do
    drive "$URL"
    printf 'none\t%s\t%s\t-\t-\t-\n' "$run" "$RPS" >>"$RESULTS"
done
kill "$PID"

for c in $CONCURRENCY; do
    log "exec sink, /bin/true, concurrency $c"
    start "exec$c" "$(printf '[[sinks]]\nname = "true"\nkind = "exec"\ncommand = ["/bin/true"]\nconcurrency = %s\n' "$c")"
    for ((run = 1; run <= RUNS; run++)); do
        before=$(sink_field delivered)
        t0=$(date +%s.%N)
        drive "$URL"
        wait_lag_zero
        t1=$(date +%s.%N)
        after=$(sink_field delivered)
        n=$((after - before))
        logged=$(wc -l <"$LOG")
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
        rate=$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
        log "run $run: intake $RPS req/s; $n events delivered in $secs s (lag 0): $rate events/s; log lines $logged"
        [[ $n -ge $OK ]] || { echo "bench_exec.sh: delivered $n < acknowledged $OK" >&2; exit 1; }
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$run" "$RPS" "$n" "$secs" "$rate" >>"$RESULTS"
    done
    kill "$PID"
done

echo
echo "exec sink running /bin/true: webhook-listener fsync=true, wrk -t1 -c$CONNS -d$DURATION, $(nproc) cores"
printf '%-12s %-4s %12s %10s %14s %14s\n' concurrency run 'intake req/s' delivered 'to lag 0 (s)' 'delivered ev/s'
while IFS=$'\t' read -r c run rps n secs rate; do
    printf '%-12s %-4s %12s %10s %14s %14s\n' "$c" "$run" "$rps" "$n" "$secs" "$rate"
done <"$RESULTS"
