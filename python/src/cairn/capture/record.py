"""`python -m cairn.capture.record`: the environment capture of this interpreter as JSON, for a
launcher that records a run from outside it (`cairn run`).

A command started by `cairn run` joins a run that already exists (`MLFLOW_RUN_ID`), and MLflow
calls no run context provider for a resumed run, so the plugin cannot add its tags then. The
launcher runs this module with the interpreter the command will use, before the command, and
records what it prints: the same tags, files and environment node the plugin records for runs
started with the fluent API, so `cairn reproduce` reads one format. The launcher does the
uploading; this module only looks (no server, no mlflow import).

Output: `{"tags": {...}, "files": [{"path", "data_base64"}], "nodes": [{"ref", "label",
"digest", "attributes"}]}`.
"""

from __future__ import annotations

import base64
import json
import sys

from cairn.capture import session


def record() -> dict[str, object]:
    """The environment's tags, the files they point at, and its lineage node."""
    nodes: dict[str, tuple[str, dict[str, object]]] = {}
    tags = session.environment_tags(nodes)
    files = session.take_files(tags)
    return {
        "tags": tags,
        "files": [
            {"path": f"{f.artifact_dir}/{f.name}", "data_base64": base64.b64encode(f.data).decode()} for f in files
        ],
        "nodes": [{"ref": f"{kind}:{key}", **body} for kind, (key, body) in nodes.items()],
    }


def main() -> int:
    json.dump(record(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
