#!/usr/bin/env bash
# Ingest with two or more `cairn` binaries side by side: each round starts every binary on a
# fresh SQLite store, then runs `cairn-bench ingest` against each in turn (the order rotating by
# round, so that drift on a shared machine hits all alike), and records points/s and the server
# CPU (user + system, from /proc) the ingest cost. Medians and paired ratios against the first
# binary are printed at the end. For an A/B of a store change: build the tree with and without
# it and pass both binaries.
#
#   bench/ingest_ab.sh /tmp/cairn-before target/release/cairn
#   ROUNDS=7 POINTS=1000000 WRITERS=8 bench/ingest_ab.sh A B C
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${CAIRN_BENCH_BIN:-$ROOT/target/release/cairn-bench}"
ROUNDS="${ROUNDS:-5}"
POINTS="${POINTS:-1000000}"
WRITERS="${WRITERS:-8}"
BINS=("$@")
(( ${#BINS[@]} >= 2 )) || { echo "usage: $0 CAIRN_BIN_A CAIRN_BIN_B [...]"; exit 2; }
source "$ROOT/bench/lib.sh"

declare -A RATE CPU
for round in $(seq "$ROUNDS"); do
    declare -A URL=() PID=()
    for i in "${!BINS[@]}"; do
        port="$(free_port)"
        "${BINS[$i]}" server --port "$port" --data-dir "$WORK/$i-$round" >"$WORK/$i-$round.log" 2>&1 &
        PIDS+=($!)
        PID[$i]=$!
        URL[$i]="http://127.0.0.1:$port"
        for _ in $(seq 100); do curl -fs "${URL[$i]}/health" >/dev/null 2>&1 && break; sleep 0.1; done
    done
    n=${#BINS[@]}
    for k in $(seq 0 $((n - 1))); do
        i=$(( (k + round) % n ))
        before="$(cpu_s "${PID[$i]}")"
        rate="$("$BENCH" ingest --url "${URL[$i]}" --writers "$WRITERS" --points "$POINTS" | field points_per_s)"
        spent="$(spent_since "${PID[$i]}" "$before")"
        RATE[$i]+="$rate "
        CPU[$i]+="$spent "
        echo "round $round ${BINS[$i]}: $rate points/s, $spent server CPU s"
    done
    for pid in "${PIDS[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
    PIDS=()
done
python3 - "${BINS[@]}" <<PY
import statistics, sys
bins = sys.argv[1:]
rate = {i: list(map(float, s.split())) for i, s in zip(range(len(bins)), """$(for i in "${!BINS[@]}"; do echo "${RATE[$i]}"; done)""".splitlines())}
cpu = {i: list(map(float, s.split())) for i, s in zip(range(len(bins)), """$(for i in "${!BINS[@]}"; do echo "${CPU[$i]}"; done)""".splitlines())}
for i, b in enumerate(bins):
    line = f"{b}: median {statistics.median(rate[i]):,.0f} points/s, {statistics.median(cpu[i]):.2f} server CPU s"
    if i:
        r = statistics.median(y / x for x, y in zip(rate[0], rate[i]))
        # A CPU reading too small to register (0.00 s at a tiny size) has no ratio.
        c = [y / x for x, y in zip(cpu[0], cpu[i]) if x > 0]
        line += f"; paired ratio to the first: points/s {r:.3f}, server CPU " + (f"{statistics.median(c):.3f}" if c else "n/a")
    print(line)
PY
