#!/usr/bin/env bash
# breakerbox's gateway next to another build of itself (an earlier commit, say), measured the same
# way in the same run: `cargo bench --bench gateway` with the other build passed in as the "other"
# gateway (see benches/gateway.rs).
#
#   git worktree add /tmp/before <commit> && (cd /tmp/before && cargo build --release)
#   bench/gateway-vs-binary.sh /tmp/before/target/release/breakerbox
#   BENCH_GATEWAY_N=500 bench/gateway-vs-binary.sh OTHER_BINARY
set -euo pipefail
OTHER=${1:?usage: bench/gateway-vs-binary.sh OTHER_BREAKERBOX_BINARY}
OTHER=$(realpath "$OTHER")
cd "$(dirname "$0")/.."
PACE=${BENCH_GATEWAY_PACE:-10ms}
export BENCH_GATEWAY_PACE=$PACE
# The other build gets as many pairs as this one.
export BENCH_GATEWAY_OTHER_N=${BENCH_GATEWAY_OTHER_N:-${BENCH_GATEWAY_N:-2000}}
export BENCH_GATEWAY_OTHER_LOADED_N=${BENCH_GATEWAY_OTHER_LOADED_N:-${BENCH_GATEWAY_PACED_N:-200}}

cargo build --release --quiet
BIN=target/release/breakerbox
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

sim_config() { # TOKEN_DELAY
    local delay=$1 p
    printf '[sim]\nseed = 0\n\n'
    for p in "anthropic anthropic claude-sonnet-4-5" "openai openai gpt-5"; do
        set -- $p
        printf '[[sim.providers]]\nname = "%s"\nprotocol = "%s"\nmodel = "%s"\n' "$1" "$2" "$3"
        printf 'first_event_latency = "0ms"\ntoken_delay = "%s"\njitter = 0.0\n\n' "$delay"
    done
}
wait_url() { # FILE
    for _ in $(seq 100); do
        grep -q 'listening on' "$1" 2>/dev/null && break
        sleep 0.1
    done
    grep -o 'listening on http://[^ ]*' "$1" | head -1 | sed 's/listening on //'
}
start_sim() { # NAME TOKEN_DELAY
    sim_config "$2" >"$TMP/$1.toml"
    "$BIN" --config "$TMP/$1.toml" sim --listen 127.0.0.1:0 >"$TMP/$1.out" 2>/dev/null &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
}
start_sim sim 0ms
SIM_PID_ZERO=$SIM_PID
start_sim paced "$PACE"
SIM_PID_PACED=$SIM_PID
SIM=$(wait_url "$TMP/sim.out")
PACED=$(wait_url "$TMP/paced.out")

# The other build's gateway: the routes benches/gateway.rs gives its own (`default`, `oai`, and
# their `-paced` twins), on the same simulators.
{
    for pair in ":$SIM" "-paced:$PACED"; do
        suffix=${pair%%:*}
        url=${pair#*:}
        printf '[[providers]]\nname = "anthropic%s"\nprotocol = "anthropic"\nmodel = "claude-sonnet-4-5"\nbase_url = "%s/anthropic"\napi_key_env = "BENCH_SIM_KEY"\n\n' "$suffix" "$url"
        printf '[[providers]]\nname = "openai%s"\nprotocol = "openai"\nmodel = "gpt-5"\nbase_url = "%s/openai/v1"\napi_key_env = "BENCH_SIM_KEY"\n\n' "$suffix" "$url"
    done
    for suffix in "" "-paced"; do
        printf '[[chains]]\nname = "default%s"\ntargets = ["anthropic%s", "openai%s"]\n\n[[routes]]\nmodel = "default%s"\nchain = "default%s"\n\n' "$suffix" "$suffix" "$suffix" "$suffix" "$suffix"
        printf '[[chains]]\nname = "oai%s"\ntargets = ["openai%s", "anthropic%s"]\n\n[[routes]]\nmodel = "oai%s"\nchain = "oai%s"\n\n' "$suffix" "$suffix" "$suffix" "$suffix" "$suffix"
    done
    # The floods open more client connections than max_connections' default (512).
    printf '[gateway]\nmax_connections = 4096\n'
} >"$TMP/other.toml"
BENCH_SIM_KEY=sim-key "$OTHER" --config "$TMP/other.toml" serve --headless --listen 127.0.0.1:0 \
    >"$TMP/other.out" 2>&1 &
OTHER_PID=$!
PIDS+=("$OTHER_PID")
OTHER_URL=$(wait_url "$TMP/other.out")
[ -n "$OTHER_URL" ] || { echo "the other build did not start:" >&2; cat "$TMP/other.out" >&2; exit 1; }
echo "other build $OTHER ($("$OTHER" --version)) on $OTHER_URL; simulators $SIM and $PACED (pace $PACE)"

BENCH_GATEWAY_SIM=$SIM BENCH_GATEWAY_SIM_PID=$SIM_PID_ZERO \
    BENCH_GATEWAY_PACED_SIM=$PACED BENCH_GATEWAY_PACED_SIM_PID=$SIM_PID_PACED \
    BENCH_GATEWAY_OTHER="before=$OTHER_URL" BENCH_GATEWAY_OTHER_PID=$OTHER_PID \
    cargo bench --quiet --bench gateway "$@"
