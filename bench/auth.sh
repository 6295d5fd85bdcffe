#!/usr/bin/env bash
# Ingest and search with access control off (`--auth none`) and on (`--auth basic`, the load
# generator signing in as an ordinary user with a password, as MLFLOW_TRACKING_USERNAME/PASSWORD
# send it), same binary, same sizes, fresh SQLite store each time. Rounds alternate off/on so that drift on a shared machine
# hits both alike; the medians are printed at the end.
#
#   bench/auth.sh                      release binaries, 3 rounds
#   CAIRN_BIN=target/debug/cairn CAIRN_BENCH_BIN=target/debug/cairn-bench ROUNDS=2 bench/auth.sh
#
# POINTS (ingest, default 200000), WRITERS (4), RUNS (search: runs created, default 1000),
# REPEAT (searches timed per round, default 21).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN="${CAIRN_BIN:-$ROOT/target/release/cairn}"
BENCH="${CAIRN_BENCH_BIN:-$ROOT/target/release/cairn-bench}"
ROUNDS="${ROUNDS:-3}"
POINTS="${POINTS:-200000}"
WRITERS="${WRITERS:-4}"
RUNS="${RUNS:-1000}"
REPEAT="${REPEAT:-21}"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # mode dir port
    if [[ "$1" == basic ]]; then
        # An ordinary user, not an admin, so every request goes through the permission rules.
        mkdir -p "$2"
        echo bench-password-1 | "$CAIRN" users add bench --password-stdin --data-dir "$2" >/dev/null
    fi
    "$CAIRN" server --auth "$1" --port "$3" --data-dir "$2" >"$2.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$3/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not start:"; cat "$2.log"; exit 1
}

stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }

declare -A INGEST SEARCH CREATE
for round in $(seq "$ROUNDS"); do
    for mode in none basic; do
        port="$(free_port)"
        dir="$WORK/$mode-$round"
        start "$mode" "$dir" "$port"
        if [[ "$mode" == basic ]]; then
            export MLFLOW_TRACKING_USERNAME=bench MLFLOW_TRACKING_PASSWORD=bench-password-1
        else
            unset MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD
        fi
        url="http://127.0.0.1:$port"
        ingest="$("$BENCH" ingest --url "$url" --writers "$WRITERS" --points "$POINTS" | field points_per_s)"
        report="$("$BENCH" search --url "$url" --create-runs "$RUNS" --max-results 100 --repeat "$REPEAT")"
        search="$(field ms_median <<<"$report")"
        create="$(field create_runs_per_s <<<"$report")"
        stop
        INGEST[$mode]+="$ingest "
        SEARCH[$mode]+="$search "
        CREATE[$mode]+="$create "
        echo "round $round auth=$mode: ingest ${ingest} points/s, runs created ${create}/s, search ${search} ms (median of $REPEAT)"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for mode in none basic; do
    echo "median auth=$mode: ingest $(echo "${INGEST[$mode]}" | median) points/s, runs created $(echo "${CREATE[$mode]}" | median)/s, search $(echo "${SEARCH[$mode]}" | median) ms"
done
