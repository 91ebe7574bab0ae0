# Shared helpers for the recipes in this folder. Sourced by each recipe's `run`; not run by itself.
#
# A recipe runs three processes (the gateproof mock, a third-party gateway, gateproof contract)
# inside a fresh network namespace that has only a loopback interface, so nothing the gateway
# does can leave the machine, and fixed ports can never collide with anything on the host.

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$RECIPES_DIR/.." && pwd)"
GATEPROOF="${GATEPROOF:-$REPO_ROOT/.venv/bin/gateproof}"

# Ports inside the namespace: the namespace is new, so these are always free.
MOCK_PORT=18081
GATEWAY_PORT=18080

NETNS=""

log() { printf '[recipe %s] %s\n' "${RECIPE:-?}" "$*" >&2; }
die() { log "error: $*"; exit 2; }

preflight() {
    [ "$(id -u)" = 0 ] || die "must run as root (it creates a network namespace with 'ip netns')"
    command -v ip >/dev/null || die "'ip' (iproute2) is not installed"
    command -v curl >/dev/null || die "'curl' is not installed"
    [ -x "$GATEPROOF" ] || die "gateproof CLI not found at $GATEPROOF (run 'make run' or build .venv first, or set GATEPROOF)"
}

# Run a command inside the namespace, without any proxy variables (there is nothing to proxy to).
in_ns() {
    ip netns exec "$NETNS" env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY \
        -u all_proxy -u ALL_PROXY "$@"
}

# Stop every process in the namespace (all of them were started by this recipe), then delete it.
netns_down() {
    [ -n "$NETNS" ] || return 0
    local pids
    pids="$(ip netns pids "$NETNS" 2>/dev/null || true)"
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        for _ in $(seq 1 50); do
            pids="$(ip netns pids "$NETNS" 2>/dev/null || true)"
            [ -z "$pids" ] && break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$NETNS" 2>/dev/null || true
    NETNS=""
}

netns_up() {
    NETNS="gp-${RECIPE}-$$"
    ip netns add "$NETNS" || die "cannot create network namespace $NETNS"
    trap 'rc=$?; netns_down; exit $rc' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    ip netns exec "$NETNS" ip link set lo up
    log "network namespace $NETNS (loopback only)"
}

# wait_ready NAME URL SECONDS LOGFILE [PID]: poll URL inside the namespace until it answers 2xx;
# give up at once when PID (the server started in the background) has exited.
wait_ready() {
    local name="$1" url="$2" seconds="$3" logfile="$4" pid="${5:-}"
    local deadline=$(( $(date +%s) + seconds ))
    while :; do
        if in_ns curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
            log "$name ready ($url)"
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before it was ready; the end of its log ($logfile):"
            tail -n 40 "$logfile" >&2
            exit 3
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "$name not ready after ${seconds}s ($url)"
            tail -n 40 "$logfile" >&2
            exit 3
        fi
        sleep 0.2
    done
}

# start_mock LOGDIR KEY_ENV: the gateproof mock provider on MOCK_PORT, accepting only the key held
# by the variable KEY_ENV (the key the gateway must send upstream), as a real provider would.
# Extra mock flags come from GATEPROOF_MOCK_ARGS.
start_mock() {
    local logdir="$1" key_env="$2"
    local args=()
    # a mock too old to check keys accepts any key; it has no --api-key-env then
    if "$GATEPROOF" mock --help 2>/dev/null | grep -q -- '--api-key-env'; then
        args+=(--api-key-env "$key_env")
    else
        log "this gateproof mock does not check API keys (no --api-key-env): auth results will be lenient"
    fi
    # shellcheck disable=SC2086
    in_ns "$GATEPROOF" mock --host 127.0.0.1 --port "$MOCK_PORT" "${args[@]}" ${GATEPROOF_MOCK_ARGS:-} \
        >"$logdir/mock.log" 2>&1 &
    wait_ready mock "http://127.0.0.1:$MOCK_PORT/_gateproof/health" 30 "$logdir/mock.log" $!
}

# exec_or_contract: with `--exec CMD...` as the recipe's arguments, run CMD inside the namespace
# (mock and gateway up, GATEWAY_URL / MOCK_URL exported) instead of the suite, to reproduce a
# failure by hand; it exits with CMD's exit code. Otherwise it returns and the recipe goes on.
exec_or_contract() {
    [ "${1:-}" = "--exec" ] || return 0
    shift
    [ "$#" -gt 0 ] || die "--exec needs a command"
    export GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT/v1" MOCK_URL="http://127.0.0.1:$MOCK_PORT"
    local rc=0
    in_ns "$@" || rc=$?
    exit "$rc"
}

# run_contract CONFIG REPORTDIR [extra gateproof contract args...]: returns gateproof's exit code.
run_contract() {
    local config="$1" report="$2"
    shift 2
    rm -rf "$report"
    mkdir -p "$report"
    # In the background and waited for: bash runs a trap only once a foreground command ends, but
    # `wait` returns as soon as a signal arrives, so Ctrl-C / SIGTERM stop the run at once (the
    # EXIT trap then sends SIGTERM to gateproof, which writes an "interrupted" report).
    in_ns "$GATEPROOF" contract --config "$config" --profile openai-core \
        --mock-url "http://127.0.0.1:$MOCK_PORT" --out "$report" "$@" \
        > >(tee "$report/terminal.txt") 2>&1 &
    local pid=$! rc=0
    wait "$pid" || rc=$?
    return "$rc"
}
