#!/usr/bin/env bash
# What the audit log costs on disk: a fresh `cairn server` on SQLite and one on PostgreSQL get
# the same runs from `cairn-bench search --create-runs` (each run a create, a log-batch of 10
# params and 3 metrics, and an update: three events), then each store reports its size, the
# audit log's share of it, bytes per run and per event, and how long `cairn audit verify --full`
# takes (the log: `audit_events` and the sealed `audit_blocks`). PostgreSQL is a throw-away cluster made here with initdb (skipped if none is found).
#
#   bench/audit_share.sh                       # 50,000 runs, release binaries
#   RUNS=5000 CAIRN_BIN=target/debug/cairn CAIRN_BENCH_BIN=target/debug/cairn-bench bench/audit_share.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CAIRN="${CAIRN_BIN:-$ROOT/target/release/cairn}"
BENCH="${CAIRN_BENCH_BIN:-$ROOT/target/release/cairn-bench}"
RUNS="${RUNS:-50000}"
source "$ROOT/bench/lib.sh"

serve() { # store-uri data-dir: sets URL; the server's pid joins PIDS (so not in a subshell)
    local port; port="$(free_port)"
    "$CAIRN" server --port "$port" --backend-store-uri "$1" --data-dir "$2" >"$2.log" 2>&1 &
    PIDS+=($!)
    URL="http://127.0.0.1:$port"
    for _ in $(seq 200); do curl -fs "$URL/health" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "server did not start:" >&2; cat "$2.log" >&2; exit 1
}

measure() { # name store-uri size-command...
    local name="$1" uri="$2"; shift 2
    mkdir -p "$WORK/$name"
    local rate started verify
    serve "$uri" "$WORK/$name/data"
    rate="$("$BENCH" search --url "$URL" --create-runs "$RUNS" --repeat 1 | field create_runs_per_s)"
    stop_all
    started=$(date +%s.%N)
    "$CAIRN" audit verify --full --backend-store-uri "$uri" >"$WORK/$name/verify.log" 2>&1 \
        || { echo "$name: audit verify failed"; cat "$WORK/$name/verify.log"; exit 1; }
    verify="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')"
    read -r total audit events < <("$@")
    awk -v n="$name" -v r="$RUNS" -v rate="$rate" -v t="$total" -v a="$audit" -v e="$events" -v v="$verify" 'BEGIN {
        printf "%-10s %8d runs  %6.0f runs/s  database %6.1f MB  audit %6.1f MB (%4.1f%%)  %5.0f B/run  audit %4.0f B/event  verify --full %s s\n",
            n, r, rate, t / 1e6, a / 1e6, 100 * a / t, t / r, a / e, v }'
}

sqlite_sizes() { # database: total bytes after a checkpoint, audit_events bytes, events
    python3 - "$1" <<'EOF'
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
total = conn.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0]
audit = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema "
                     "WHERE tbl_name IN ('audit_events', 'audit_blocks'))").fetchone()[0]
events = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
print(total, audit, events)
EOF
}

pg_sizes() { # url
    psql -At -F ' ' "$1" -c "VACUUM ANALYZE" -c "SELECT pg_database_size(current_database()), \
        pg_total_relation_size('audit_events') + pg_total_relation_size('audit_blocks'), \
        (SELECT count(*) FROM audit_events)" | tail -1
}

mkdir -p "$WORK/sqlite"
measure sqlite "sqlite:///$WORK/sqlite/cairn.db" sqlite_sizes "$WORK/sqlite/cairn.db"

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [[ -z "$PG_BIN" ]]; then echo "postgres: skipped (no initdb found)"; exit 0; fi
PG_DIR="$WORK/pg"; PG_PORT="$(free_port)"
PG_USER=(); [[ "$(id -u)" == 0 ]] && PG_USER=(runuser -u postgres --)
mkdir -p "$PG_DIR"; [[ "$(id -u)" == 0 ]] && chown postgres "$PG_DIR" && chmod 755 "$WORK"
"${PG_USER[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
"${PG_USER[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -o "-p $PG_PORT -k $PG_DIR" -w start >/dev/null
trap '"${PG_USER[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true; cleanup' EXIT
PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
measure postgres "$PG_URL" pg_sizes "$PG_URL"
