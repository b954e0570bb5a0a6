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
# runs only the recording and forwarding modes), BENCH_RECORDING (0 skips the recording mode),
# BENCH_IN_FLIGHT, BENCH_MAX_BATCH and BENCH_FWD_DURATION (the sinks' max_in_flight and max_batch,
# and the burst, in the forwarding mode), BENCH_SINKS ("nats redis"; the sinks the forwarding
# mode attaches, e.g. "redis" for one broker alone), BENCH_FORWARDING (1; 0 skips the forwarding mode).
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
# BENCH_RECORDING=0 skips it (to run only the forwarding mode, with BENCH_PAIRS="").
RECORDING=${BENCH_RECORDING:-1}
if [[ $RECORDING != 0 ]]; then
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
fi

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
[[ $RECORDING != 0 ]] && awk -F'\t' '
    $1 == "recording" { rps[$2] += $4; p99[$2] += $6; n[$2]++ }
    END {
        printf "%-8s %22.2f %22.2f\n", "record", (rps["rec"] / n["rec"]) / (rps["off"] / n["off"]),
            (p99["rec"] / n["rec"]) / (p99["off"] / n["off"])
    }' "$RESULTS"
[[ $RECORDING != 0 ]] && echo "(record: recording on / off, means over three alternate runs each)"

# --- forwarding: intake with a NATS and a Redis sink attached vs none ----------------------------
# Both ours, fsync = true, driven alternately for BENCH_FWD_DURATION (10 s: the issue's burst).
# After each burst into the server with sinks: each sink's lag when wrk stopped, how long until its
# lag_events is 0 (from /healthz), the events/s it delivered over burst + drain, and p50/p99 of
# webhook_sink_confirm_seconds (arrival to broker confirmation; from the admin /metrics, this
# run's bucket counts only), and the CPU seconds of each process and of the whole machine (the
# kernel's writeback of the brokers' files included) in the burst and in the drain. Skipped when
# either broker is missing.
# Knobs: BENCH_IN_FLIGHT (the sinks' max_in_flight, default 1: in order), BENCH_MAX_BATCH (the
# sinks' max_batch; unset: the default; 1: no batching), BENCH_FWD_DURATION.
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
FWD_DURATION=${BENCH_FWD_DURATION:-10s}
BATCH_LINE=""
[[ -n ${BENCH_MAX_BATCH:-} ]] && BATCH_LINE="max_batch = $BENCH_MAX_BATCH"
NATS_PORT=$(free_port)
REDIS_PORT=$(free_port)
mkdir -p "$WORK/js" "$WORK/redis"
"$NATS_BIN" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/js" >"$WORK/nats.out" 2>&1 &
PIDS+=("$!")
NATS_PID=$!
"$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --appendonly yes \
    --appendfsync always --save "" >"$WORK/redis.out" 2>&1 &
PIDS+=("$!")
REDIS_PID=$!
for ((i = 0; i < 300; i++)); do
    grep -q "Server is ready" "$WORK/nats.out" && grep -q "Ready to accept" "$WORK/redis.out" && break
    sleep 0.1
done

# start_fwd NAME SINKS_TOML: ours with fsync and the given sinks, admin (for /metrics) on a free
# port; sets PID, URL, HEALTH, METRICS.
start_fwd() {
    local name=$1 port admin
    port=$(free_port)
    admin=$(free_port)
    {
        printf 'listen = "127.0.0.1:%s"\n\n[admin]\nlisten = "127.0.0.1:%s"\n\n[log]\nfile = "%s"\nformat = "json"\n\n' "$port" "$admin" "$WORK/fwd-$name.log"
        printf '[[hooks]]\npath = "/webhook/"\nprovider = "netbox"\nsecrets = ["literal:%s"]\n%s\n' "$SECRET" "$2"
    } >"$WORK/fwd-$name.toml"
    RUST_LOG=warn "$OURS" --config "$WORK/fwd-$name.toml" >"$WORK/fwd-$name.out" 2>"$WORK/fwd-$name.err" &
    started "$port" "http://127.0.0.1:$port/healthz"
    HEALTH=http://127.0.0.1:$port/healthz
    METRICS=http://127.0.0.1:$admin/metrics
}

SINKS_TOML=""
for sink in ${BENCH_SINKS:-nats redis}; do
    case $sink in
    nats) SINKS_TOML+=$(printf '[[sinks]]\nname = "bus"\nkind = "nats"\nurl = "nats://127.0.0.1:%s"\nstream = "WEBHOOKS"\nmax_in_flight = %s\n%s\n\n' "$NATS_PORT" "$IN_FLIGHT" "$BATCH_LINE") ;;
    redis) SINKS_TOML+=$(printf '[[sinks]]\nname = "cache"\nkind = "redis"\nurl = "redis://127.0.0.1:%s/0"\nmax_in_flight = %s\n%s\n\n' "$REDIS_PORT" "$IN_FLIGHT" "$BATCH_LINE") ;;
    *) echo "bench.sh: BENCH_SINKS: unknown sink $sink (nats, redis)" >&2; exit 1 ;;
    esac
    SINKS_TOML+=$'\n'
done
start_fwd none ""
NONE_URL=$URL
NONE_PID=$PID
start_fwd sinks "$SINKS_TOML"
SINKS_URL=$URL SINKS_HEALTH=$HEALTH SINKS_METRICS=$METRICS SINKS_PID=$PID

# probe.py snap OUT | after BEFORE T0: "snap" saves each sink's delivered count and confirm-time
# buckets; "after" (run when wrk stopped) reads each sink's lag, polls until every lag_events is
# 0 (120 s at most), and prints one line per sink: name lag_at_end drain_s delivered events_per_s
# p50_ms p99_ms (quantiles interpolated in this run's bucket counts, as histogram_quantile does).
cat >"$WORK/probe.py" <<'PY'
import http.client, json, re, sys, time, urllib.parse, urllib.request
health, metrics = sys.argv[1], sys.argv[2]
BUCKET = re.compile(r'^webhook_sink_(confirm|ack_to_confirm)_seconds_bucket\{(.*)\} (\S+)')
# One kept-alive connection for the polls: a new connection (and urllib's setup) per poll cost
# 0.6-0.8 CPU s per drain, taken from the processes being measured.
HEALTH = urllib.parse.urlsplit(health)
conn = None
def sinks():
    global conn
    for attempt in (1, 2):
        try:
            if conn is None:
                conn = http.client.HTTPConnection(HEALTH.hostname, HEALTH.port, timeout=10)
            conn.request("GET", HEALTH.path)
            return {s["name"]: s for s in json.loads(conn.getresponse().read())["sinks"]}
        except (OSError, http.client.HTTPException):
            conn = None
            if attempt == 2:
                raise
def buckets():
    out = {}
    for line in urllib.request.urlopen(metrics).read().decode().splitlines():
        m = BUCKET.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            key = labels["sink"] + ("" if m.group(1) == "confirm" else "/ack")
            out.setdefault(key, []).append((float(labels["le"]), float(m.group(3))))
    return out
def snap():
    return {"delivered": {n: s["delivered"] for n, s in sinks().items()}, "buckets": buckets()}
def quantile(q, bs):
    total = bs[-1][1]
    if total == 0:
        return float("nan")
    rank, lo, below = q * total, 0.0, 0.0
    for le, cum in bs:
        if cum >= rank:
            if le == float("inf"):
                return lo * 1000
            return (lo + (le - lo) * (rank - below) / max(cum - below, 1e-9)) * 1000
        lo, below = le, cum
    return lo * 1000
if sys.argv[3] == "snap":
    json.dump(snap(), open(sys.argv[4], "w"))
    sys.exit(0)
before, t0 = json.load(open(sys.argv[4])), float(sys.argv[5])
t_end = time.time()
lag = {n: s["lag_events"] for n, s in sinks().items()}
drained = {}
while len(drained) < len(lag) and time.time() - t_end < 120:
    for n, s in sinks().items():
        if n not in drained and s["lag_events"] == 0:
            drained[n] = time.time()
    time.sleep(0.05)
after = snap()
for n in sorted(lag):
    done = drained.get(n)
    delivered = after["delivered"][n] - before["delivered"].get(n, 0)
    span = (done or time.time()) - t0
    def run_buckets(key):
        prev = dict(before["buckets"].get(key, []))
        return [(le, cum - prev.get(le, 0)) for le, cum in after["buckets"].get(key, [])]
    bs, acks = run_buckets(n), run_buckets(n + "/ack")
    print("%s %d %s %d %.0f %.2f %.2f %.2f %.2f" % (n, lag[n], "%.2f" % (done - t_end) if done else "timeout",
          delivered, delivered / span, quantile(0.5, bs), quantile(0.99, bs),
          quantile(0.5, acks) if acks else float("nan"), quantile(0.99, acks) if acks else float("nan")))
PY
probe() { python3 "$WORK/probe.py" "$SINKS_HEALTH" "$SINKS_METRICS" "$@"; }
# cpu_s PID: user+system CPU seconds the process has used so far.
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
# machine_s: the whole machine's busy CPU seconds so far (user, nice, system, irq, softirq: every
# process and the kernel's own workers, e.g. writing the brokers' files back), a space, the steal
# (taken by the hypervisor), a space, and the current time.
machine_s() {
    awk -v t="$(getconf CLK_TCK)" -v now="$(date +%s.%N)" \
        '/^cpu / { printf "%.2f %.2f %s", ($2 + $3 + $4 + $7 + $8) / t, $9 / t, now }' /proc/stat
}

FWD=$WORK/forward.tsv # run server rps p50 p99
SINK_RES=$WORK/forward-sinks.tsv # run sink lag_at_end drain_s delivered ev/s p50 p99
CPU=$WORK/forward-cpu.tsv # run none_us_per_req sinks_us_per_req ours nats redis machine (CPU s over burst + drain)
: >"$FWD"
: >"$SINK_RES"
: >"$CPU"
for run in 1 2; do
    n0=$(cpu_s "$NONE_PID")
    DURATION=$FWD_DURATION drive forward none "$run" "$NONE_URL"
    printf '%s\tnone\t%s\t%s\t%s\n' "$run" "$R_RPS" "$R_P50" "$R_P99" >>"$FWD"
    none_us=$(awk -v a="$n0" -v b="$(cpu_s "$NONE_PID")" -v n="$R_OK" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
    probe snap "$WORK/before.json"
    c0=("$(cpu_s "$SINKS_PID")" "$(cpu_s "$NATS_PID")" "$(cpu_s "$REDIS_PID")")
    m0=$(machine_s)
    t0=$(date +%s.%N)
    DURATION=$FWD_DURATION drive forward sinks "$run" "$SINKS_URL"
    mm=$(machine_s)
    sinks_ok=$R_OK
    printf '%s\tsinks\t%s\t%s\t%s\n' "$run" "$R_RPS" "$R_P50" "$R_P99" >>"$FWD"
    while read -r name lag drain delivered rate p50 p99 a50 a99; do
        printf '   forward sinks run %s, %s: lag %s when wrk stopped, 0 after %s s; %s events at %s events/s; arrival to confirmation p50 %s ms, p99 %s ms; 2xx to confirmation p50 %s ms, p99 %s ms\n' \
            "$run" "$name" "$lag" "$drain" "$delivered" "$rate" "$p50" "$p99" "$a50" "$a99" >&2
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$name" "$lag" "$drain" "$delivered" "$rate" "$p50" "$p99" "$a50" "$a99" >>"$SINK_RES"
    done < <(probe after "$WORK/before.json" "$t0")
    m1=$(machine_s)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$none_us" \
        "$(awk -v a="${c0[0]}" -v b="$(cpu_s "$SINKS_PID")" -v n="$sinks_ok" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')" \
        "$(awk -v a="${c0[0]}" -v b="$(cpu_s "$SINKS_PID")" 'BEGIN { printf "%.1f", b - a }')" \
        "$(awk -v a="${c0[1]}" -v b="$(cpu_s "$NATS_PID")" 'BEGIN { printf "%.1f", b - a }')" \
        "$(awk -v a="${c0[2]}" -v b="$(cpu_s "$REDIS_PID")" 'BEGIN { printf "%.1f", b - a }')" \
        "$(echo "$m0 $mm $m1" | awk -v n="$(nproc)" '{ printf "burst %.1f busy, %.1f stolen of %.1f; drain %.1f busy, %.1f stolen of %.1f", $4 - $1, $5 - $2, ($6 - $3) * n, $7 - $4, $8 - $5, ($9 - $6) * n }')" >>"$CPU"
done
echo
echo "forwarding: webhook-listener fsync=true, no sink vs the sinks ${BENCH_SINKS:-nats redis} (max_in_flight $IN_FLIGHT${BENCH_MAX_BATCH:+, max_batch $BENCH_MAX_BATCH}); wrk -t1 -c$CONNS -d$FWD_DURATION"
printf '%-4s %-6s %10s %9s %9s\n' run sinks 'req/s' 'p50 ms' 'p99 ms'
while IFS=$'\t' read -r run server rps p50 p99; do
    printf '%-4s %-6s %10s %9s %9s\n' "$run" "$server" "$rps" "$p50" "$p99"
done <"$FWD"
awk -F'\t' '{ rps[$2] += $3; n[$2]++ } END { printf "intake with sinks / without: %.2f (mean of %d runs each)\n", (rps["sinks"] / n["sinks"]) / (rps["none"] / n["none"]), n["none"] }' "$FWD"
printf '%-4s %-6s %12s %12s %10s %12s %12s %12s %12s %12s\n' run sink 'lag at end' 'lag 0 after' delivered 'events/s' 'confirm p50' 'confirm p99' 'ack p50' 'ack p99'
while IFS=$'\t' read -r run name lag drain delivered rate p50 p99 a50 a99; do
    printf '%-4s %-6s %12s %11ss %10s %12s %10s ms %10s ms %10s ms %10s ms\n' "$run" "$name" "$lag" "$drain" "$delivered" "$rate" "$p50" "$p99" "$a50" "$a99"
done <"$SINK_RES"
echo "(lag 0 after: seconds after wrk stopped, polled every 50 ms; events/s: over the burst and the drain; confirm: from arrival to the broker's ack; ack: from the 2xx, the group commit, to the broker's ack)"
while IFS=$'\t' read -r run none_us sinks_us ours nats redis machine; do
    printf 'run %s CPU: webhook-listener %s us/request without sinks, %s with (burst + drain); CPU s over burst + drain: webhook-listener %s, nats-server %s, redis-server %s; the whole machine (CPU s): %s\n' \
        "$run" "$none_us" "$sinks_us" "$ours" "$nats" "$redis" "$machine"
done <"$CPU"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
