#!/usr/bin/env bash
# Ingest and search with access control off (`--auth none`) and on (`--auth basic`, the load
# generator signing in as an ordinary user with a password, as MLFLOW_TRACKING_USERNAME/PASSWORD
# send it), same binary, same sizes, fresh SQLite stores each round. Each round runs both servers
# at once: ingest goes to one then the other (the order alternating by round), and the timed
# searches alternate between them PAIRS times, so that drift on a shared machine hits both alike.
# The server CPU (user + system, from /proc) each phase cost is counted too: per request it is
# far steadier than wall-clock time on a shared machine. The medians and the paired ratios
# (what to quote) are printed at the end.
#
#   bench/auth.sh                      release binaries, 3 rounds
#   CAIRN_BIN=target/debug/cairn CAIRN_BENCH_BIN=target/debug/cairn-bench ROUNDS=2 bench/auth.sh
#
# POINTS (ingest, default 200000), WRITERS (4), RUNS (search: runs created, default 1000),
# REPEAT (searches per timing, default 21), PAIRS (alternating off/on timings per round, default 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN="${CAIRN_BIN:-$ROOT/target/release/cairn}"
BENCH="${CAIRN_BENCH_BIN:-$ROOT/target/release/cairn-bench}"
ROUNDS="${ROUNDS:-3}"
POINTS="${POINTS:-200000}"
WRITERS="${WRITERS:-4}"
RUNS="${RUNS:-1000}"
REPEAT="${REPEAT:-21}"
PAIRS="${PAIRS:-5}"
source "$ROOT/bench/lib.sh"

start() { # mode dir port
    if [[ "$1" == basic ]]; then
        # An ordinary user, not an admin, so every request goes through the permission rules.
        mkdir -p "$2"
        echo bench-password-1 | "$CAIRN" users add bench --password-stdin --data-dir "$2" >"$2.users.log" 2>&1
    fi
    "$CAIRN" server --auth "$1" --port "$3" --data-dir "$2" >"$2.log" 2>&1 &
    PIDS+=($!)
    PID[$1]=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$3/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server did not start:"; cat "$2.log"; exit 1
}



# The credentials the load generator sends to each server.
as() { # mode command...
    if [[ "$1" == basic ]]; then
        MLFLOW_TRACKING_USERNAME=bench MLFLOW_TRACKING_PASSWORD=bench-password-1 "${@:2}"
    else
        env -u MLFLOW_TRACKING_USERNAME -u MLFLOW_TRACKING_PASSWORD "${@:2}"
    fi
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A INGEST SEARCH CREATE URL EXPERIMENT PID INGEST_CPU SEARCH_CPU
for round in $(seq "$ROUNDS"); do
    for mode in none basic; do
        port="$(free_port)"
        start "$mode" "$WORK/$mode-$round" "$port"
        URL[$mode]="http://127.0.0.1:$port"
    done
    order="none basic"; (( round % 2 == 0 )) && order="basic none"
    for mode in $order; do
        before="$(cpu_s "${PID[$mode]}")"
        ingest="$(as "$mode" "$BENCH" ingest --url "${URL[$mode]}" --writers "$WRITERS" --points "$POINTS" | field points_per_s)"
        INGEST_CPU[$mode]+="$(spent_since "${PID[$mode]}" "$before") "
        report="$(as "$mode" "$BENCH" search --url "${URL[$mode]}" --create-runs "$RUNS" --max-results 100 --repeat 1)"
        EXPERIMENT[$mode]="$(field experiment_id <<<"$report")"
        INGEST[$mode]+="$ingest "
        CREATE[$mode]+="$(field create_runs_per_s <<<"$report") "
    done
    declare -A TIMES=([none]="" [basic]="") CPU=([none]="" [basic]="")
    for _ in $(seq "$PAIRS"); do
        for mode in $order; do
            before="$(cpu_s "${PID[$mode]}")"
            report="$(as "$mode" "$BENCH" search --url "${URL[$mode]}" --experiment-id "${EXPERIMENT[$mode]}" --max-results 100 --repeat "$REPEAT")"
            CPU[$mode]+="$(spent_since "${PID[$mode]}" "$before") "
            TIMES[$mode]+="$(field ms_median <<<"$report") "
        done
    done
    for mode in none basic; do SEARCH_CPU[$mode]+="$(sum <<<"${CPU[$mode]}") "; done
    stop_all
    for mode in none basic; do
        search="$(echo "${TIMES[$mode]}" | median)"
        SEARCH[$mode]+="$search "
        echo "round $round auth=$mode: ingest $(echo "${INGEST[$mode]}" | awk '{print $NF}') points/s ($(echo "${INGEST_CPU[$mode]}" | awk '{print $NF}') server CPU s), runs created $(echo "${CREATE[$mode]}" | awk '{print $NF}')/s, search ${search} ms (median of $PAIRS timings of $REPEAT, alternating; $(echo "${SEARCH_CPU[$mode]}" | awk '{print $NF}') server CPU s)"
    done
done
for mode in none basic; do
    echo "median auth=$mode: ingest $(echo "${INGEST[$mode]}" | median) points/s, runs created $(echo "${CREATE[$mode]}" | median)/s, search $(echo "${SEARCH[$mode]}" | median) ms"
done
# Within a round the two servers ran side by side, so the ratio within a round cancels the drift
# that the two medians above still carry; the median of those ratios is the overhead to quote.
# A reading too small to register (0.00 CPU s at a tiny size) has no ratio.
ratio() { python3 -c 'import statistics,sys; a,b=(list(map(float,x.split())) for x in sys.argv[1:]); r=[y/x for x,y in zip(a,b) if x > 0]; print(f"{statistics.median(r):.3f}" if r else "n/a")' "$1" "$2"; }
echo "paired ratio basic/none (median over $ROUNDS rounds): ingest $(ratio "${INGEST[none]}" "${INGEST[basic]}"), runs created $(ratio "${CREATE[none]}" "${CREATE[basic]}"), search time $(ratio "${SEARCH[none]}" "${SEARCH[basic]}")"
echo "paired ratio basic/none of server CPU (median over $ROUNDS rounds): ingest $(ratio "${INGEST_CPU[none]}" "${INGEST_CPU[basic]}"), search $(ratio "${SEARCH_CPU[none]}" "${SEARCH_CPU[basic]}")"
