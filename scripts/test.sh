#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every test.
#
#   scripts/test.sh              Rust tests, then the end-to-end suite on SQLite and PostgreSQL
#   scripts/test.sh --rust       Rust tests only
#   scripts/test.sh --e2e        end-to-end suite only
#   scripts/test.sh --ui         the web UI's unit tests (node) and browser suite (tests/ui) only
#   scripts/test.sh --reference  end-to-end suite against a real `mlflow server` (no Rust build),
#                                which checks that the tests themselves encode MLflow's behaviour
#   scripts/test.sh --release    test a release build of `cairn` end to end (slower to build)
#   scripts/test.sh --bench      the benchmark's smoke run only (bench/run.sh --scale smoke's checks)
#   scripts/test.sh --python     the Python package (python/) in its own venv, against cairn server
#   Anything after `--` is passed to pytest, e.g. `scripts/test.sh --e2e -- -k search -x`
#   (or `scripts/test.sh --ui -- -k run_page`).
#
# Set-up is idempotent and quick when already done: the venv is reinstalled only when the pinned
# requirements change, and apt-get runs only when a tool is missing. One throw-away PostgreSQL
# cluster serves the whole run and is removed on exit, even on failure.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv-test"
REQUIREMENTS="$ROOT/tests/e2e/requirements.txt"
RUN_RUST=1
RUN_E2E=1
RUN_BENCH=1
RUN_UI=1
RUN_PY=1
REFERENCE=0
PROFILE=debug
PYTEST_ARGS=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rust) RUN_E2E=0; RUN_BENCH=0; RUN_UI=0; RUN_PY=0 ;;
        --e2e) RUN_RUST=0; RUN_BENCH=0; RUN_UI=0; RUN_PY=0 ;;
        --ui) RUN_RUST=0; RUN_E2E=0; RUN_BENCH=0; RUN_PY=0 ;;
        --bench) RUN_RUST=0; RUN_E2E=0; RUN_UI=0; RUN_PY=0 ;;
        --python) RUN_RUST=0; RUN_E2E=0; RUN_UI=0; RUN_BENCH=0 ;;
        --reference) RUN_RUST=0; RUN_BENCH=0; RUN_UI=0; RUN_PY=0; REFERENCE=1 ;;
        --release) PROFILE=release ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

START=$SECONDS
section() { printf '\n==== %s (%ss) ====\n' "$*" "$((SECONDS - START))"; }
die() { echo "error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
section "system packages"

APT_UPDATED=0
apt_install() {
    [[ $(id -u) -eq 0 ]] || die "need root to install $* with apt-get"
    if [[ $APT_UPDATED -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The tamper tests edit the store with the sqlite3 shell, as an attacker would.
command -v sqlite3 >/dev/null || apt_install sqlite3

# The Python package's idempotency and offline-spool tests run on PostgreSQL too.
NEED_PG=$(( (RUN_RUST || RUN_E2E || RUN_PY) && ! REFERENCE ))
if [[ $NEED_PG -eq 1 ]]; then
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
        apt_install postgresql
        PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    # psql, createdb and friends from the same version as the server.
    export PATH="$PG_BIN:$PATH"
    id postgres >/dev/null 2>&1 || die "PostgreSQL refuses to run as root and there is no 'postgres' user"
fi
# The scale-out test puts Debian's HAProxy in front of three replicas.
if [[ $RUN_E2E -eq 1 && $REFERENCE -eq 0 ]]; then
    command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || apt_install haproxy
fi
echo "sqlite3: $(sqlite3 --version | cut -d' ' -f1)${PG_BIN:+; postgres: $PG_BIN}"

# Building cairn builds the web UI, which needs node and npm; the browser suite drives Debian's
# chromium through Debian's chromedriver (nothing downloads a browser).
command -v npm >/dev/null || apt_install nodejs npm
if [[ $RUN_UI -eq 1 ]]; then
    command -v chromium >/dev/null && command -v chromedriver >/dev/null || apt_install chromium chromium-driver
    echo "node: $(node --version); $(chromium --version 2>/dev/null | head -n 1)"
fi

# ---------------------------------------------------------------------------------------------
# Both suites use the venv: the end-to-end tests run in it, and the S3 tests of cairn-artifacts
# start an S3-protocol server (moto) from it.
if [[ $RUN_E2E -eq 1 || $RUN_RUST -eq 1 || $RUN_UI -eq 1 ]]; then
    section "python venv ($VENV)"
    PYTHON="$(command -v python3.11 || command -v python3)" || die "python3 is needed for the e2e tests"
    STAMP="$VENV/.requirements.sha256"
    WANT="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PYTHON" -m venv "$VENV"
    fi
    if [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
        echo "$WANT" > "$STAMP"
    fi
    "$VENV/bin/python" -c 'import mlflow, pytest; print(f"mlflow {mlflow.__version__}, pytest {pytest.__version__}")'
    export CAIRN_TEST_VENV="$VENV"
fi

# ---------------------------------------------------------------------------------------------
PG_DIR=""
cleanup() {
    if [[ -n "$PG_DIR" ]]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [[ $NEED_PG -eq 1 ]]; then
    section "throw-away PostgreSQL cluster"
    PG_DIR="$(mktemp -d /tmp/cairn-test-pg.XXXXXX)"
    chown postgres:postgres "$PG_DIR"
    PG_PORT="$(free_port)"
    # Run from a folder postgres may enter, or initdb warns about the working directory.
    (cd "$PG_DIR" && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres \
        --auth=trust --encoding=UTF8 --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1) \
        || { cat "$PG_DIR/initdb.log"; die "initdb failed"; }
    # Durability of the cluster itself is irrelevant to a throw-away test run, so fsync is off;
    # the socket goes into the temp folder so nothing is left in /var/run.
    (cd "$PG_DIR" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off \
            -c full_page_writes=off -c max_connections=300" start >/dev/null) \
        || { cat "$PG_DIR/server.log"; die "PostgreSQL did not start"; }
    export CAIRN_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "CAIRN_TEST_POSTGRES_URL=$CAIRN_TEST_POSTGRES_URL"
fi

# ---------------------------------------------------------------------------------------------
RUST_STATUS="skipped"
E2E_STATUS="skipped"
FAILED=0

LINT_STATUS="skipped"
if [[ $RUN_RUST -eq 1 ]]; then
    # The formatter and the linter keep the code as it is: rustfmt.toml holds the house style,
    # and a clippy warning fails the run like a failing test.
    section "cargo fmt --check, cargo clippy -D warnings"
    LINT_STATUS="passed"
    if ! cargo fmt --all --check; then LINT_STATUS="FAILED (cargo fmt --all --check)"; FAILED=1; fi
    if ! cargo clippy --workspace --all-targets --quiet -- -D warnings; then
        LINT_STATUS="FAILED (cargo clippy)"; FAILED=1
    fi
fi

if [[ $RUN_RUST -eq 1 ]]; then
    section "cargo test --workspace"
    # No fail-fast: one failing test binary must not hide the results of the others.
    if cargo test --workspace --no-fail-fast; then RUST_STATUS="passed"; else RUST_STATUS="FAILED"; FAILED=1; fi
fi

if [[ $RUN_E2E -eq 1 ]]; then
    E2E_ARGS=(-q)
    if [[ $REFERENCE -eq 1 ]]; then
        E2E_ARGS+=(--reference-mlflow)
    else
        section "build cairn ($PROFILE)"
        BUILD=(cargo build -p cairn)
        [[ $PROFILE == release ]] && BUILD+=(--release)
        if "${BUILD[@]}"; then
            export CAIRN_BIN="$ROOT/target/$PROFILE/cairn"
            # A missing cluster must fail the suite, not quietly skip half of it.
            export CAIRN_E2E_REQUIRE_POSTGRES=1
        else
            E2E_STATUS="FAILED (cairn did not build)"
            FAILED=1
        fi
    fi
    if [[ $E2E_STATUS == skipped ]]; then
        if [[ $REFERENCE -eq 1 ]]; then section "pytest tests/e2e (reference: mlflow server)"; else section "pytest tests/e2e (cairn server)"; fi
        if "$VENV/bin/python" -m pytest tests/e2e "${E2E_ARGS[@]}" "${PYTEST_ARGS[@]}"; then
            E2E_STATUS="passed"
        else
            E2E_STATUS="FAILED"
            FAILED=1
        fi
    fi
fi

UI_STATUS="skipped"
if [[ $RUN_UI -eq 1 ]]; then
    section "web UI unit tests (node --test)"
    # The UI's dependencies are installed by the cairn-web build script; build first so that a
    # fresh checkout has them.
    if cargo build -p cairn && (cd web && npm test); then
        section "browser tests (tests/ui, headless chromium)"
        export CAIRN_BIN="$ROOT/target/debug/cairn"
        if "$VENV/bin/python" -m pytest tests/ui -q "${PYTEST_ARGS[@]}"; then UI_STATUS="passed"; else UI_STATUS="FAILED"; FAILED=1; fi
    else
        UI_STATUS="FAILED (build or unit tests)"
        FAILED=1
    fi
fi

PY_STATUS="skipped"
if [[ $RUN_PY -eq 1 ]]; then
    # The Python package is installed the way users install it (`pip install ./python`, not
    # editable) into a venv of its own, so its entry points are what MLflow really loads and
    # nothing from the e2e venv leaks in. Dependencies are reinstalled only when pins change.
    section "python package (python/, .venv-python)"
    PY_VENV="$ROOT/.venv-python"
    PY_REQUIREMENTS="$ROOT/python/tests/requirements.txt"
    PY_STAMP="$PY_VENV/.requirements.sha256"
    PY_WANT="$(sha256sum "$PY_REQUIREMENTS" | cut -d' ' -f1)"
    PYTHON="$(command -v python3.11 || command -v python3)" || die "python3 is needed for the package tests"
    [[ -x "$PY_VENV/bin/python" ]] || "$PYTHON" -m venv "$PY_VENV"
    if [[ "$(cat "$PY_STAMP" 2>/dev/null || true)" != "$PY_WANT" ]]; then
        "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$PY_REQUIREMENTS" ./python \
            && echo "$PY_WANT" > "$PY_STAMP"
    fi
    if cargo build -p cairn \
        && "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
            --no-build-isolation --force-reinstall ./python \
        && (cd python && "$PY_VENV/bin/python" -m mypy src) \
        && CAIRN_BIN="$ROOT/target/debug/cairn" CAIRN_PY_REQUIRE_POSTGRES=1 \
            "$PY_VENV/bin/python" -m pytest python/tests -q "${PYTEST_ARGS[@]}"; then
        PY_STATUS="passed"
    else
        PY_STATUS="FAILED"
        FAILED=1
    fi
fi

BENCH_STATUS="skipped"
if [[ $RUN_BENCH -eq 1 ]]; then
    # The benchmark's smoke scale runs the same workload against MLflow and Cairn and checks that
    # both give the same answers; it keeps the benchmark working and never judges speed. Debug
    # binaries and the test venv (same pinned mlflow) are enough for that. The large-store tool runs
    # at a tiny size on both backends, which must find the same runs for every query.
    section "benchmark smoke run (answers, not speed)"
    BENCH_OUT="$(mktemp -d /tmp/cairn-bench-smoke.XXXXXX)"
    if cargo build -p cairn -p cairn-bench \
        && "$VENV/bin/python" bench/harness.py --scale smoke \
            --cairn-bin "$ROOT/target/debug/cairn" --bench-bin "$ROOT/target/debug/cairn-bench" \
            --results-dir "$BENCH_OUT" \
        && "$VENV/bin/python" bench/large.py --targets cairn-sqlite@200,cairn-postgres@200 --experiments 2 \
            --series 1 --series-steps 2000 --repeat 1 --concurrency 4 \
            --cairn-bin "$ROOT/target/debug/cairn" --bench-bin "$ROOT/target/debug/cairn-bench" \
            --results-dir "$BENCH_OUT"; then
        BENCH_STATUS="passed"
    else
        BENCH_STATUS="FAILED"
        FAILED=1
    fi
    rm -rf "$BENCH_OUT"
fi

section "summary"
echo "lint:       $LINT_STATUS"
echo "rust tests: $RUST_STATUS"
echo "e2e tests:  $E2E_STATUS"
echo "ui tests:   $UI_STATUS"
echo "python pkg: $PY_STATUS"
echo "bench smoke: $BENCH_STATUS"
echo "total time: $((SECONDS - START))s"
exit "$FAILED"
