#!/usr/bin/env bash
# breakerbox's gateway next to LiteLLM's proxy, measured the same way in the same run.
#
# Starts two `breakerbox sim` processes (zero latency, and tokens PACE apart), a LiteLLM proxy whose
# models route to them exactly like breakerbox's routes do (`default` → the Anthropic endpoint,
# `oai` → the OpenAI endpoint; `default-paced` / `oai-paced` → the paced simulator), then runs
# `cargo bench --bench gateway` with all of them passed in (see benches/gateway.rs).
#
#   bench/gateway-compare.sh                  # everything
#   BENCH_GATEWAY_N=500 bench/gateway-compare.sh
#   LITELLM_WORKERS=2 bench/gateway-compare.sh
#
# LiteLLM is installed into LITELLM_VENV (default /tmp/litellm) when missing, from PyPI:
#   python3 -m venv /tmp/litellm && /tmp/litellm/bin/pip install 'litellm[proxy]'
# Nothing of LiteLLM is written into this repository.
set -euo pipefail
# LiteLLM answers ~30 requests a second here: fewer sequential pairs for it by default.
export BENCH_GATEWAY_OTHER_N=${BENCH_GATEWAY_OTHER_N:-500}
cd "$(dirname "$0")/.."

VENV=${LITELLM_VENV:-/tmp/litellm}
WORKERS=${LITELLM_WORKERS:-1}
PACE=${BENCH_GATEWAY_PACE:-10ms}
export BENCH_GATEWAY_PACE=$PACE

if [ ! -x "$VENV/bin/litellm" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'litellm[proxy]'
fi
"$VENV/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: /litellm /p'

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

# Simulated providers: no time to the first event, TOKEN_DELAY between tokens, no jitter (the same
# as benches/gateway.rs uses when it starts its own).
sim_config() { # TOKEN_DELAY
    local delay=$1 p
    printf '[sim]\nseed = 0\n\n'
    for p in "anthropic anthropic claude-sonnet-4-5" "openai openai gpt-5"; do
        set -- $p
        printf '[[sim.providers]]\nname = "%s"\nprotocol = "%s"\nmodel = "%s"\n' "$1" "$2" "$3"
        printf 'first_event_latency = "0ms"\ntoken_delay = "%s"\njitter = 0.0\n\n' "$delay"
    done
}

# A `breakerbox sim` on a free port, its banner in $TMP/NAME.out; its pid in SIM_PID.
start_sim() { # NAME TOKEN_DELAY
    sim_config "$2" >"$TMP/$1.toml"
    "$BIN" --config "$TMP/$1.toml" sim --listen 127.0.0.1:0 >"$TMP/$1.out" 2>/dev/null &
    SIM_PID=$!
    PIDS+=("$SIM_PID")
}
sim_url() { # NAME
    for _ in $(seq 100); do
        grep -q 'listening on' "$TMP/$1.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -o 'listening on http://[^ ]*' "$TMP/$1.out" | head -1 | sed 's/listening on //'
}

start_sim sim 0ms
SIM_PID_ZERO=$SIM_PID
start_sim paced "$PACE"
SIM_PID_PACED=$SIM_PID
SIM=$(sim_url sim)
PACED=$(sim_url paced)

model() { # NAME PROVIDER-MODEL API-BASE
    printf '  - model_name: %s\n    litellm_params:\n      model: %s\n      api_base: %s\n      api_key: sim-key\n' "$1" "$2" "$3"
}
{
    echo "model_list:"
    model default anthropic/claude-sonnet-4-5 "$SIM/anthropic"
    model oai openai/gpt-5 "$SIM/openai/v1"
    model default-paced anthropic/claude-sonnet-4-5 "$PACED/anthropic"
    model oai-paced openai/gpt-5 "$PACED/openai/v1"
    echo "litellm_settings:"
    echo "  telemetry: false"
} >"$TMP/litellm.yaml"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# No master key, like breakerbox without --token: no auth on either side. LITELLM_LOG=ERROR and no
# model-cost-map download, as LiteLLM's production notes advise.
LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY=true \
    LITELLM_LOG=ERROR LITELLM_LOCAL_MODEL_COST_MAP=True \
    "$VENV/bin/litellm" --config "$TMP/litellm.yaml" --host 127.0.0.1 --port "$PORT" \
    --num_workers "$WORKERS" >"$TMP/litellm.log" 2>&1 &
LITELLM_PID=$!
PIDS+=("$LITELLM_PID")
for i in $(seq 180); do
    curl -sf "http://127.0.0.1:$PORT/health/liveliness" >/dev/null && break
    if ! kill -0 "$LITELLM_PID" 2>/dev/null; then
        echo "LiteLLM exited:" >&2
        tail -n 30 "$TMP/litellm.log" >&2
        exit 1
    fi
    sleep 1
done
echo "litellm (workers: $WORKERS) up after ${i} s on port $PORT; simulators $SIM and $PACED (pace $PACE)"

BENCH_GATEWAY_SIM=$SIM BENCH_GATEWAY_SIM_PID=$SIM_PID_ZERO \
    BENCH_GATEWAY_PACED_SIM=$PACED BENCH_GATEWAY_PACED_SIM_PID=$SIM_PID_PACED \
    BENCH_GATEWAY_OTHER="litellm=http://127.0.0.1:$PORT" BENCH_GATEWAY_OTHER_PID=$LITELLM_PID \
    cargo bench --quiet --bench gateway "$@"
