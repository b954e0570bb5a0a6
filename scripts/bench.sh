#!/usr/bin/env bash
# End-to-end throughput and latency of webhook-listener against the floor a minimal server sets:
#
#   mode fsync:   ours with [log] fsync = true   vs  examples/durable_limit.rs (verify, append, fdatasync)
#   mode nofsync: ours with [log] fsync = false  vs  examples/bare_limit.rs    (verify, answer; no log)
#   recording:    ours (fsync = false) with the admin listener recording every delivery, one live
#                 page (an SSE client) open  vs  ours with [admin] listen = "" (nothing recorded)
#
# Usage, from anywhere in a clone (installs wrk from Debian's packages if it is missing; needs root
# for that, plus curl, openssl and python3):
#
#   scripts/bench.sh
#
# Each pair is driven alternately (ref, ours, ref, ours) with `wrk -t1 -c32 -d5s --latency`, POSTing
# the NetBox fixture tests/fixtures/netbox/v4.6.8-created.json with a valid X-Hook-Signature. Prints
# req/s, p50, p99 and peak RSS per run and the ratios ours/ref, and checks after each of our runs that
# the event log holds one line per acknowledged request. Takes about 1.5 minutes after the build.
# Knobs (environment): BENCH_DURATION (5s), BENCH_CONNECTIONS (32), BENCH_LIVE_PAGE (1: an SSE
# client reads the admin stream during the recording runs; 0: none), TMPDIR (where the logs go:
# put it on the disk you care about; a tmpfs makes fsync free), BENCH_PAIRS ("fsync nofsync"; empty
# runs only the recording and forwarding modes), BENCH_IN_FLIGHT (the sinks' max_in_flight in the
# forwarding mode), BENCH_FORWARDING (1; 0 skips the forwarding mode).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DURATION=${BENCH_DURATION:-5s}
CONNS=${BENCH_CONNECTIONS:-32}
SECRET=my-webhook-secret
BODY_SRC=$ROOT/tests/fixtures/netbox/v4.6.8-created.json

log() { printf '== %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
for tool in curl openssl python3 cargo; do
    command -v "$tool" >/dev/null || { echo "bench.sh: $tool is required" >&2; exit 1; }
done

log "building (release)"
cargo build --release --quiet --bin webhook-listener --example bare_limit --example durable_limit
TARGET=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OURS=$TARGET/release/webhook-listener
BARE=$TARGET/release/examples/bare_limit
DURABLE=$TARGET/release/examples/durable_limit

# --- scratch dir, cleanup ----------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/webhook-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
FSTYPE=$(stat -f -c %T "$WORK")
log "scratch dir $WORK ($FSTYPE)"
[[ $FSTYPE == tmpfs ]] && log "WARNING: $WORK is a tmpfs: fdatasync costs nothing there"

# --- the request -------------------------------------------------------------------------------
BODY=$WORK/body.json
cp "$BODY_SRC" "$BODY"
SIG=$(openssl dgst -sha512 -hmac "$SECRET" <"$BODY" | awk '{print $NF}')
log "body: $(basename "$BODY_SRC"), $(wc -c <"$BODY") bytes; X-Hook-Signature ${SIG:0:16}..."

# request() counts what each thread sends, so done() can tell answered from still in flight when
# wrk stopped (those are logged by the server but never counted by wrk).
cat >"$WORK/post.lua" <<EOF
local f = assert(io.open("$BODY", "rb"))
local body = f:read("*a")
f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
    sent = 0
    req = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Hook-Signature"] = "$SIG",
    }, body)
end
function request()
    sent = sent + 1
    return req
end
function done(summary, latency, requests)
    local sent = 0
    for _, t in ipairs(threads) do sent = sent + t:get("sent") end
    local e = summary.errors
    io.write(string.format("BENCH requests=%d non2xx=%d sent=%d connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, e.status, sent, e.connect, e.read, e.write, e.timeout))
end
EOF

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_up PID URL: until the server answers anything over HTTP (or dies, or 30 s pass).
wait_up() {
    local pid=$1 url=$2 i code
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || { echo "bench.sh: server $pid exited; see $WORK/*.err" >&2; exit 1; }
        code=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
        [[ $code != 000 ]] && return 0
        sleep 0.1
    done
    echo "bench.sh: $url did not answer in 30 s" >&2
    exit 1
}

# check_post URL: one signed POST must get 200, or the numbers would measure 401s.
check_post() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -H "X-Hook-Signature: $SIG" --data-binary "@$BODY" "$1")
    [[ $code == 200 ]] || { echo "bench.sh: signed POST to $1 got $code, not 200" >&2; exit 1; }
}

# started PORT READY_URL: the server just put in the background is PID; waits for it, checks one
# signed POST, and sets URL.
started() {
    PID=$!
    PIDS+=("$PID")
    URL=http://127.0.0.1:$1/webhook/
    wait_up "$PID" "$2"
    check_post "$URL"
}

# start_ours MODE [ADMIN]: sets PID and URL (and ADMIN_URL). ADMIN "off" turns the admin
# listener (and so the recording) off; otherwise it runs on a free port, as by default.
start_ours() {
    local mode=$1 port fsync=true admin=${2:-on} admin_listen
    [[ $mode != fsync ]] && fsync=false
    port=$(free_port)
    admin_listen=""
    if [[ $admin != off ]]; then
        admin_listen=127.0.0.1:$(free_port)
    fi
    ADMIN_URL=http://$admin_listen
    cat >"$WORK/ours-$mode.toml" <<EOF
listen = "127.0.0.1:$port"

[admin]
listen = "$admin_listen"

[log]
file = "$WORK/ours-$mode.log"
format = "json"
fsync = $fsync

[[hooks]]
path = "/webhook/"
provider = "netbox"
secrets = ["literal:$SECRET"]
EOF
    RUST_LOG=warn "$OURS" --config "$WORK/ours-$mode.toml" >"$WORK/ours-$mode.out" 2>"$WORK/ours-$mode.err" &
    started "$port" "http://127.0.0.1:$port/healthz"
}

# start_ref MODE: sets PID and URL.
start_ref() {
    local mode=$1 port
    port=$(free_port)
    if [[ $mode == fsync ]]; then
        WEBHOOK_SECRET=$SECRET "$DURABLE" "127.0.0.1:$port" "$WORK/ref-$mode.log" fsync \
            >"$WORK/ref-$mode.out" 2>"$WORK/ref-$mode.err" &
    else
        WEBHOOK_SECRET=$SECRET "$BARE" "127.0.0.1:$port" >"$WORK/ref-$mode.out" 2>"$WORK/ref-$mode.err" &
    fi
    started "$port" "http://127.0.0.1:$port/webhook/"
}

# wrk's latency as milliseconds (it prints us, ms or s).
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n }'
}

RESULTS=$WORK/results.tsv # mode server run rps p50 p99 rss_mb
: >"$RESULTS"

# drive MODE SERVER RUN URL: one wrk run; sets R_RPS R_P50 R_P99 R_OK R_SENT, appends to RESULTS.
drive() {
    local mode=$1 server=$2 run=$3 url=$4 out
    out=$WORK/wrk-$mode-$server-$run.txt
    wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/post.lua" "$url" >"$out" 2>&1
    R_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    R_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    R_P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    local line
    line=$(grep '^BENCH ' "$out")
    local requests non2xx
    requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    non2xx=$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line")
    R_SENT=$(sed -E 's/.*sent=([0-9]+).*/\1/' <<<"$line")
    R_OK=$((requests - non2xx))
    printf '   %-7s %-4s run %s: %9s req/s  p50 %7s ms  p99 %7s ms  2xx %7d  non-2xx %d  (%s)\n' \
        "$mode" "$server" "$run" "$R_RPS" "$R_P50" "$R_P99" "$R_OK" "$non2xx" \
        "$(sed -E 's/^BENCH requests=[0-9]+ non2xx=[0-9]+ //' <<<"$line")" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$server" "$run" "$R_RPS" "$R_P50" "$R_P99" >>"$RESULTS"
}

hwm_mb() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
lines_in() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

declare -A RSS
# BENCH_PAIRS="" skips the comparisons with the reference servers (to run only the forwarding mode).
PAIRS=${BENCH_PAIRS-fsync nofsync}
for mode in $PAIRS; do
    log "mode $mode"
    start_ref "$mode"
    REF_PID=$PID REF_URL=$URL
    start_ours "$mode"
    OURS_PID=$PID OURS_URL=$URL
    OURS_LOG=$WORK/ours-$mode.log
    base=$(lines_in "$OURS_LOG") # the check_post line
    ok_total=0 sent_total=0
    for run in 1 2; do
        drive "$mode" ref "$run" "$REF_URL"
        drive "$mode" ours "$run" "$OURS_URL"
        ok_total=$((ok_total + R_OK))
        sent_total=$((sent_total + R_SENT))
        # Requests still in flight when wrk stops are answered to a closed socket: logged, never
        # counted by wrk. So the log must hold at least every 2xx and at most every request sent.
        logged=$(($(lines_in "$OURS_LOG") - base))
        if ((logged == ok_total)); then
            verdict=MATCH
        elif ((logged > ok_total && logged <= sent_total)); then
            verdict="MATCH (+$((logged - ok_total)) in flight when wrk stopped: logged, answered to a closed socket)"
        else
            verdict=MISMATCH
        fi
        printf '   %-7s ours log: %d lines, cumulative 2xx %d, sent %d -> %s\n' \
            "$mode" "$logged" "$ok_total" "$sent_total" "$verdict" >&2
    done
    RSS[$mode,ref]=$(hwm_mb "$REF_PID")
    RSS[$mode,ours]=$(hwm_mb "$OURS_PID")
    kill "$REF_PID" "$OURS_PID"
    wait "$REF_PID" "$OURS_PID" 2>/dev/null || true
done

# --- recording: the same server with and without the admin listener, alternately ---------------
log "mode recording (fsync = false; admin listener on with one live page open, vs off)"
start_ours norec off
OFF_PID=$PID OFF_URL=$URL
start_ours rec on
REC_PID=$PID REC_URL=$URL
# One browser's worth of live page: an SSE client reading every record (BENCH_LIVE_PAGE=0: none).
if [[ ${BENCH_LIVE_PAGE:-1} != 0 ]]; then
    curl -sN "$ADMIN_URL/api/stream" >/dev/null &
    PIDS+=("$!")
fi
for run in 1 2 3; do
    drive recording off "$run" "$OFF_URL"
    drive recording rec "$run" "$REC_URL"
done
RSS[recording,off]=$(hwm_mb "$OFF_PID")
RSS[recording,rec]=$(hwm_mb "$REC_PID")
kill "$OFF_PID" "$REC_PID"
wait "$OFF_PID" "$REC_PID" 2>/dev/null || true

# --- report ------------------------------------------------------------------------------------
if [[ -n $PAIRS ]]; then
REF_NAME_fsync=durable_limit
REF_NAME_nofsync=bare_limit
echo
echo "webhook-listener vs reference; body $(wc -c <"$BODY") bytes; wrk -t1 -c$CONNS -d$DURATION; $(nproc) CPUs; log dir on $FSTYPE"
printf '%-8s %-16s %-4s %10s %9s %9s %12s\n' mode server run 'req/s' 'p50 ms' 'p99 ms' 'peak RSS MB'
while IFS=$'\t' read -r mode server run rps p50 p99; do
    name=webhook-listener
    [[ $server == off ]] && name=ours-no-admin
    [[ $server == rec ]] && name=ours-recording
    if [[ $server == ref ]]; then
        name_var=REF_NAME_$mode
        name=${!name_var}
    fi
    printf '%-8s %-16s %-4s %10s %9s %9s %12s\n' "$mode" "$name" "$run" "$rps" "$p50" "$p99" "${RSS[$mode,$server]}"
done <"$RESULTS"
echo
printf '%-8s %22s %22s\n' mode 'throughput ours/ref' 'p99 ours/ref'
for mode in $PAIRS; do
    awk -F'\t' -v m="$mode" '
        $1 == m { rps[$2] += $4; p99[$2] += $6; n[$2]++ }
        END {
            tr = (rps["ref"] > 0) ? (rps["ours"] / n["ours"]) / (rps["ref"] / n["ref"]) : 0
            pr = (p99["ref"] > 0) ? (p99["ours"] / n["ours"]) / (p99["ref"] / n["ref"]) : 0
            printf "%-8s %22.2f %22.2f\n", m, tr, pr
        }' "$RESULTS"
done
echo "(ratios of the means over the two runs; throughput > 1 and p99 < 1 favour ours)"
fi
awk -F'\t' '
    $1 == "recording" { rps[$2] += $4; p99[$2] += $6; n[$2]++ }
    END {
        printf "%-8s %22.2f %22.2f\n", "record", (rps["rec"] / n["rec"]) / (rps["off"] / n["off"]),
            (p99["rec"] / n["rec"]) / (p99["off"] / n["off"])
    }' "$RESULTS"
echo "(record: recording on / off, means over three alternate runs each)"

# --- forwarding: intake with a NATS and a Redis sink attached vs none ----------------------------
# Both ours, fsync = true, driven alternately. After each run with sinks the script times how long
# the sinks take to drain the burst (lag_events back to 0 in /healthz) and reports the events/s
# delivered into each broker over the run plus the drain. Skipped when either broker is missing.
# Knob: BENCH_IN_FLIGHT (the sinks' max_in_flight, default 1: in order).
if [[ ${BENCH_FORWARDING:-1} == 0 ]]; then
    exit 0
fi
NATS_BIN=$(command -v nats-server || ls /usr/sbin/nats-server /usr/bin/nats-server 2>/dev/null | head -1 || true)
REDIS_BIN=$(command -v redis-server || ls /usr/sbin/redis-server /usr/bin/redis-server 2>/dev/null | head -1 || true)
if [[ -z ${NATS_BIN:-} || -z ${REDIS_BIN:-} ]]; then
    echo
    echo "forwarding: skipped (apt-get install nats-server redis-server)"
    exit 0
fi
log "mode forward"
IN_FLIGHT=${BENCH_IN_FLIGHT:-1}
NATS_PORT=$(free_port)
REDIS_PORT=$(free_port)
mkdir -p "$WORK/js" "$WORK/redis"
"$NATS_BIN" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/js" >"$WORK/nats.out" 2>&1 &
PIDS+=("$!")
"$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
    --appendfsync always --save "" >"$WORK/redis.out" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 300; i++)); do
    grep -q "Server is ready" "$WORK/nats.out" && grep -q "Ready to accept" "$WORK/redis.out" && break
    sleep 0.1
done

# start_fwd NAME SINKS_TOML: ours with fsync and the given sinks; sets PID, URL, HEALTH.
start_fwd() {
    local name=$1 port
    port=$(free_port)
    {
        # No admin listener: its default port would be taken by the second server.
        printf 'listen = "127.0.0.1:%s"\n\n[admin]\nlisten = ""\n\n[log]\nfile = "%s"\nformat = "json"\n\n' "$port" "$WORK/fwd-$name.log"
        printf '[[hooks]]\npath = "/webhook/"\nprovider = "netbox"\nsecrets = ["literal:%s"]\n%s\n' "$SECRET" "$2"
    } >"$WORK/fwd-$name.toml"
    RUST_LOG=warn "$OURS" --config "$WORK/fwd-$name.toml" >"$WORK/fwd-$name.out" 2>"$WORK/fwd-$name.err" &
    started "$port" "http://127.0.0.1:$port/healthz"
    HEALTH=http://127.0.0.1:$port/healthz
}

SINKS_TOML=$(printf '[[sinks]]\nname = "bus"\nkind = "nats"\nurl = "nats://127.0.0.1:%s"\nstream = "WEBHOOKS"\nmax_in_flight = %s\n\n[[sinks]]\nname = "cache"\nkind = "redis"\nurl = "redis://127.0.0.1:%s/0"\nmax_in_flight = %s\n' \
    "$NATS_PORT" "$IN_FLIGHT" "$REDIS_PORT" "$IN_FLIGHT")
start_fwd none ""
NONE_URL=$URL
start_fwd sinks "$SINKS_TOML"
SINKS_URL=$URL SINKS_HEALTH=$HEALTH

# delivered: the fewest events any sink has delivered so far.
delivered() {
    python3 -c 'import json,sys,urllib.request; h=json.load(urllib.request.urlopen(sys.argv[1])); print(min(s["delivered"] for s in h["sinks"]))' "$SINKS_HEALTH"
}
# lag_zero: seconds until every sink's lag_events is 0 ("timeout" after 120 s).
lag_zero() {
    python3 -c '
import json, sys, time, urllib.request
url, t0 = sys.argv[1], time.monotonic()
while time.monotonic() - t0 < 120:
    h = json.load(urllib.request.urlopen(url))
    if all(s["lag_events"] == 0 for s in h["sinks"]):
        print("%.2f" % (time.monotonic() - t0))
        sys.exit(0)
    time.sleep(0.05)
print("timeout")' "$SINKS_HEALTH"
}

FWD=$WORK/forward.tsv # run server rps p50 p99 drain_s events_per_s
: >"$FWD"
for run in 1 2; do
    drive forward none "$run" "$NONE_URL"
    printf '%s\tnone\t%s\t%s\t%s\t-\t-\n' "$run" "$R_RPS" "$R_P50" "$R_P99" >>"$FWD"
    before=$(delivered)
    t0=$(date +%s.%N)
    drive forward sinks "$run" "$SINKS_URL"
    drained=$(lag_zero)
    t2=$(date +%s.%N)
    after=$(delivered)
    rate=$(awk -v n=$((after - before)) -v a="$t0" -v c="$t2" 'BEGIN { printf "%.0f", n / (c - a) }')
    printf '   forward sinks run %s: lag 0 %s s after wrk stopped; %d events into each broker at %s events/s\n' \
        "$run" "$drained" $((after - before)) "$rate" >&2
    printf '%s\tsinks\t%s\t%s\t%s\t%s\t%s\n' "$run" "$R_RPS" "$R_P50" "$R_P99" "$drained" "$rate" >>"$FWD"
done
echo
echo "forwarding: webhook-listener fsync=true, no sink vs a NATS and a Redis sink (max_in_flight $IN_FLIGHT); wrk -t1 -c$CONNS -d$DURATION"
printf '%-4s %-6s %10s %9s %9s %18s %16s\n' run sinks 'req/s' 'p50 ms' 'p99 ms' 'lag 0 after (s)' 'delivered ev/s'
while IFS=$'\t' read -r run server rps p50 p99 drain rate; do
    printf '%-4s %-6s %10s %9s %9s %18s %16s\n' "$run" "$server" "$rps" "$p50" "$p99" "$drain" "$rate"
done <"$FWD"
awk -F'\t' '{ rps[$2] += $3; n[$2]++ } END { printf "intake with sinks / without: %.2f (mean of %d runs each)\n", (rps["sinks"] / n["sinks"]) / (rps["none"] / n["none"]), n["none"] }' "$FWD"
