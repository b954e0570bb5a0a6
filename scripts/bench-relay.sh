#!/usr/bin/env bash
# Events/s through the http relay sink to a local service, with the intake rate beside it.
#
#   none:      ours with [log] fsync = true and no sink (the intake baseline)
#   relay c=N: the same plus a kind = "http" sink (concurrency N) relaying every event to
#              examples/relay_target.rs, which verifies each request with the standardwebhooks crate
#
# Usage, from anywhere in a clone (installs wrk from Debian's packages if it is missing; needs
# curl, openssl and python3):
#
#   scripts/bench-relay.sh
#
# Method as in scripts/bench.sh's forwarding mode: the NetBox fixture, signed, POSTed with
# `wrk -t1 -c32 -d5s`; after each burst it times how long until the sink's lag_events is 0, and
# reports events/s delivered over burst + drain ("live"); then it makes the target answer 410 (the
# sink pauses), drives a second burst into the spool, and times the drain after SIGHUP with intake
# idle ("backlog": the relay's own speed). Checks that the target verified every delivered event
# and refused none.
# Knobs (environment): BENCH_DURATION (5s), BENCH_CONNECTIONS (32), BENCH_CONCURRENCY ("1 8"),
# BENCH_RUNS (2), TMPDIR (where the logs and spools go).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-32}
CONCURRENCY=${BENCH_CONCURRENCY:-1 8}
RUNS=${BENCH_RUNS:-2}
SECRET=my-webhook-secret
RELAY_SECRET=whsec_$(printf 'bench-relay key, 32 bytes long!!' | base64)

BENCH_NAME=bench-relay.sh
# shellcheck source=bench-common.sh
. "$ROOT/scripts/bench-common.sh"
require curl openssl python3 cargo
build --example relay_target
RELAY_TARGET=$TARGET/release/examples/relay_target
scratch webhook-bench-relay
netbox_post

wait_up() {
    local pid=$1 url=$2 i code
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || { echo "bench-relay.sh: $pid exited; see $WORK/*.err" >&2; exit 1; }
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
        [[ $code != 000 ]] && return 0
        sleep 0.1
    done
    echo "bench-relay.sh: $url did not answer in 30 s" >&2
    exit 1
}

TARGET_PORT=$(free_port)
RELAY_SECRET=$RELAY_SECRET "$RELAY_TARGET" "127.0.0.1:$TARGET_PORT" >"$WORK/target.out" 2>"$WORK/target.err" &
PIDS+=("$!")
wait_up "$!" "http://127.0.0.1:$TARGET_PORT/count"
target_verified() { curl -s "http://127.0.0.1:$TARGET_PORT/count" | sed -E 's/verified=([0-9]+).*/\1/'; }
target_failed() { curl -s "http://127.0.0.1:$TARGET_PORT/count" | sed -E 's/.*failed=([0-9]+).*/\1/'; }

# start NAME SINKS_TOML: ours with fsync and the given sinks; sets PID, URL, HEALTH.
start() {
    local name=$1 port
    port=$(free_port)
    {
        printf 'listen = "127.0.0.1:%s"\n\n[admin]\nlisten = ""\n\n[log]\nfile = "%s"\nformat = "json"\n\n' "$port" "$WORK/$name.log"
        printf '[[hooks]]\npath = "/webhook/"\nprovider = "netbox"\nsecrets = ["literal:%s"]\n%s\n' "$SECRET" "$2"
    } >"$WORK/$name.toml"
    RUST_LOG=warn "$OURS" --config "$WORK/$name.toml" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$!
    PIDS+=("$PID")
    URL=http://127.0.0.1:$port/webhook/
    HEALTH=http://127.0.0.1:$port/healthz
    wait_up "$PID" "$HEALTH"
}

# One wrk burst; sets R_RPS and R_OK.
drive() {
    local out=$WORK/wrk-$1-$2.txt line
    wrk -t1 -c"$CONNS" -d"$DURATION" -s "$WORK/post.lua" "$3" >"$out" 2>&1
    R_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    line=$(grep '^BENCH ' "$out")
    R_OK=$(( $(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line") - $(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line") ))
}

delivered() {
    python3 -c 'import json,sys,urllib.request; h=json.load(urllib.request.urlopen(sys.argv[1])); print(sum(s["delivered"] for s in h["sinks"]))' "$HEALTH"
}
# Seconds until every sink's lag_events is 0 ("timeout" after 300 s).
lag_zero() {
    python3 -c '
import json, sys, time, urllib.request
url, t0 = sys.argv[1], time.monotonic()
while time.monotonic() - t0 < 300:
    h = json.load(urllib.request.urlopen(url))
    if all(s["lag_events"] == 0 for s in h["sinks"]):
        print("%.2f" % (time.monotonic() - t0))
        sys.exit(0)
    time.sleep(0.05)
print("timeout")' "$HEALTH"
}

RESULTS=$WORK/results.tsv # config run rps delivered drain_s rate_all paused_rps backlog rate_drain
: >"$RESULTS"
start none ""
NONE_URL=$URL
for run in $(seq 1 "$RUNS"); do
    for c in $CONCURRENCY; do
        log "run $run: no sink"
        drive none "$run-$c" "$NONE_URL"
        printf 'none\t%s\t%s\t-\t-\t-\t-\t-\t-\n' "$run" "$R_RPS" >>"$RESULTS"

        log "run $run: relay, concurrency $c"
        start "relay-c$c-$run" "$(printf '[spool]\ndir = "%s"\n\n[[sinks]]\nname = "relay"\nkind = "http"\nurl = "http://127.0.0.1:%s/hooks"\nsecret = "%s"\nconcurrency = %s\n' "$WORK/relay-c$c-$run.spool" "$TARGET_PORT" "$RELAY_SECRET" "$c")"
        before_verified=$(target_verified)
        t0=$(date +%s.%N)
        drive relay "$run-$c" "$URL"
        drained=$(lag_zero)
        t2=$(date +%s.%N)
        after=$(delivered)
        verified=$(( $(target_verified) - before_verified ))
        [[ $verified -ge $R_OK ]] || { echo "bench-relay.sh: target verified $verified of $R_OK accepted" >&2; exit 1; }
        [[ $(target_failed) == 0 ]] || { echo "bench-relay.sh: target refused some signatures" >&2; exit 1; }
        rate_all=$(awk -v n="$after" -v a="$t0" -v c="$t2" 'BEGIN { printf "%.0f", n / (c - a) }')
        live_rps=$R_RPS live_ok=$R_OK

        # The relay's own speed: a backlog built while the target answers 410 (the sink pauses and
        # intake goes on), then SIGHUP resumes it and the drain is timed.
        curl -s "http://127.0.0.1:$TARGET_PORT/gone" >/dev/null
        drive paused "$run-$c" "$URL"
        paused_rps=$R_RPS
        curl -s "http://127.0.0.1:$TARGET_PORT/back" >/dev/null
        backlog_from=$(delivered)
        t3=$(date +%s.%N)
        kill -HUP "$PID"
        backlog_drained=$(lag_zero)
        t4=$(date +%s.%N)
        backlog=$(( $(delivered) - backlog_from ))
        rate_drain=$(awk -v n="$backlog" -v a="$t3" -v c="$t4" 'BEGIN { printf "%.0f", n / (c - a) }')
        [[ $(target_failed) == 0 ]] || { echo "bench-relay.sh: target refused some signatures" >&2; exit 1; }
        log "   live: intake $live_rps req/s, $live_ok accepted; $after relayed ($verified verified), lag 0 $drained s after wrk; $rate_all ev/s"
        log "   backlog: intake $paused_rps req/s while paused; $backlog drained in $backlog_drained s after SIGHUP: $rate_drain ev/s"
        printf 'relay c=%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$run" "$live_rps" "$after" "$drained" "$rate_all" "$paused_rps" "$backlog" "$rate_drain" >>"$RESULTS"
        kill "$PID"
        wait "$PID" 2>/dev/null || true
    done
done

echo
echo "relay: webhook-listener fsync=true, no sink vs an http sink to examples/relay_target (verifying); wrk -t1 -c$CONNS -d$DURATION"
echo "live: the relay sends while intake runs; backlog: built while the target answered 410, drained after SIGHUP"
printf '%-10s %-4s %10s %9s %9s %10s | %17s %8s %12s\n' config run 'intake/s' relayed 'lag 0 (s)' 'live ev/s' 'intake/s (paused)' backlog 'drain ev/s'
while IFS=$'\t' read -r cfg run rps n drain all prps backlog dr; do
    printf '%-10s %-4s %10s %9s %9s %10s | %17s %8s %12s\n' "$cfg" "$run" "$rps" "$n" "$drain" "$all" "$prps" "$backlog" "$dr"
done <"$RESULTS"
