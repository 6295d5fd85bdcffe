#!/usr/bin/env bash
# The benchmark, one command: Cairn vs MLflow side by side (see bench/README.md).
#
#   bench/run.sh --scale smoke     # under two minutes once built; checks answers, not speed
#   bench/run.sh --scale full      # the issue's sizes; takes 20-30 minutes
#
# Other flags go to bench/harness.py (for example --targets mlflow-workers1,cairn-sqlite).
# It creates bench/.venv with the pinned MLflow, builds the release binaries, then runs the harness.
set -euo pipefail

MLFLOW_VERSION=3.17.2
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"

say() { echo "[bench] $*" >&2; }

# The venv is reused when it already holds the pinned version; pip uses the machine's configured index.
if ! "$venv/bin/python" -c "import mlflow, sys; sys.exit(mlflow.__version__ != '$MLFLOW_VERSION')" 2>/dev/null; then
    say "creating $venv with mlflow==$MLFLOW_VERSION"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
fi

say "building cairn and cairn-bench (release)"
(cd "$root" && cargo build --release --quiet -p cairn -p cairn-bench)

cd "$here"
exec "$venv/bin/python" "$here/harness.py" \
    --cairn-bin "$root/target/release/cairn" \
    --bench-bin "$root/target/release/cairn-bench" \
    "$@"
