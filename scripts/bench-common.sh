# Shared by scripts/bench_exec.sh and scripts/bench-relay.sh (sourced, not run): the tools check,
# the release build, the scratch dir with its cleanup, the signed NetBox body and wrk's script.
# The caller sets ROOT, SECRET and BENCH_NAME first.

log() { printf '== %s\n' "$*" >&2; }

# require TOOL...: wrk is installed from Debian's packages when missing; the others must be there.
require() {
    if ! command -v wrk >/dev/null; then
        log "installing wrk (apt-get)"
        apt-get update -qq && apt-get install -y -qq wrk >/dev/null
    fi
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$BENCH_NAME: $tool is required" >&2; exit 1; }
    done
}

# build [CARGO ARGS...]: builds our binary (and whatever else is named) in release; sets TARGET, OURS.
build() {
    log "building (release)"
    cargo build --release --quiet --bin webhook-listener "$@"
    TARGET=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    OURS=$TARGET/release/webhook-listener
}

# scratch PREFIX: sets WORK (removed on exit, with every pid in PIDS killed and reaped).
scratch() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    PIDS=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    log "scratch dir $WORK ($(stat -f -c %T "$WORK"))"
}
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}

# netbox_post: the NetBox fixture signed with SECRET, and $WORK/post.lua POSTing it (wrk prints
# "BENCH requests=N non2xx=M" at the end).
netbox_post() {
    BODY=$WORK/body.json
    cp "$ROOT/tests/fixtures/netbox/v4.6.8-created.json" "$BODY"
    SIG=$(openssl dgst -sha512 -hmac "$SECRET" <"$BODY" | awk '{print $NF}')
    cat >"$WORK/post.lua" <<EOF
local f = assert(io.open("$BODY", "rb"))
local body = f:read("*a")
f:close()
function init(args)
    req = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Hook-Signature"] = "$SIG",
    }, body)
end
function request() return req end
function done(summary, latency, requests)
    io.write(string.format("BENCH requests=%d non2xx=%d\n", summary.requests, summary.errors.status))
end
EOF
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
