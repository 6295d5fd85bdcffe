# Shell helpers the side-by-side server benchmarks share (`source "$ROOT/bench/lib.sh"`): a work
# folder and the servers started in it, both cleaned up on exit, and the readings they take.

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A field of the last JSON line on stdin (a cairn-bench report).
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }

# CPU seconds (user + system) a process has used so far: what a request costs the server,
# without the scheduling noise that a shared machine adds to wall-clock times.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }

# The CPU seconds process $1 used since the reading $2.
spent_since() { awk -v a="$2" -v b="$(cpu_s "$1")" 'BEGIN {printf "%.2f", b - a}'; }

# Stops the servers started so far (SIGTERM, then waits for each).
stop_all() { for pid in "${PIDS[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done; PIDS=(); }

# The sum of the numbers on stdin.
sum() { tr ' ' '\n' | awk '{s += $1} END {printf "%.2f", s}'; }
