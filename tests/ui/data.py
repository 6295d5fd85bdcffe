"""The data the browser tests look at, logged with the real mlflow client.

One experiment of ordinary runs (params, metric histories with a spike, tags, a failed run, a
parent with children), one run whose every user-supplied field carries an XSS payload, with
artifacts of every previewable kind, and an experiment whose name is a payload.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

XSS = "<img src=x onerror=alert(1)>"
SPIKE_STEP = 1234


@dataclass
class Dataset:
    experiment_id: str
    experiment_name: str
    run_ids: list[str]
    names: dict[str, str]  # run id -> run name
    parent_id: str
    child_ids: list[str]
    xss_run_id: str
    xss_experiment_id: str
    long_run_id: str
    params: dict[str, dict[str, str]] = field(default_factory=dict)


def log_dataset(url: str) -> Dataset:
    client = MlflowClient(tracking_uri=url)
    stamp = int(time.time())
    name = f"ui-main-{stamp}"
    exp = client.create_experiment(name, tags={"team": "vision"})
    now = int(time.time() * 1000)
    run_ids, names, params = [], {}, {}
    for i in range(30):
        run = client.create_run(exp, run_name=f"run-{i:02d}", tags={"team": "vision" if i % 2 else "speech"})
        rid = run.info.run_id
        p = {"lr": str([0.1, 0.01, 0.001][i % 3]), "batch": str(32 * (1 + i % 4)), "optimizer": ["adam", "sgd"][i % 2]}
        metrics = []
        for step in range(50):
            metrics.append(Metric("loss", 1.0 / (1 + step) + i * 0.01, now + step, step))
            metrics.append(Metric("acc", step / 50.0 - i * 0.001, now + step, step))
        client.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in p.items()])
        client.set_terminated(rid, "FAILED" if i == 7 else "FINISHED")
        run_ids.append(rid)
        names[rid] = f"run-{i:02d}"
        params[rid] = p

    parent = client.create_run(exp, run_name="sweep-parent")
    children = []
    for j in range(2):
        child = client.create_run(exp, run_name=f"sweep-child-{j}", tags={"mlflow.parentRunId": parent.info.run_id})
        client.log_batch(child.info.run_id, metrics=[Metric("loss", 0.5 - j * 0.1, now, 0)], params=[Param("lr", str(0.5 + j))])
        client.set_terminated(child.info.run_id)
        children.append(child.info.run_id)
    client.set_terminated(parent.info.run_id)

    # A long series with one spike that a naive sampler would drop.
    long_run = client.create_run(exp, run_name="long-series")
    lr = long_run.info.run_id
    batch: list[Metric] = []
    for step in range(5000):
        value = 10.0 if step == SPIKE_STEP else 1.0 + 0.1 * math.sin(step / 50)
        batch.append(Metric("loss", value, now + step, step))
        if len(batch) == 1000:
            client.log_batch(lr, metrics=batch)
            batch = []
    client.set_terminated(lr)

    xss_run = log_xss_run(client, exp)
    xss_exp = client.create_experiment(f"{XSS} {stamp}", tags={"payload": XSS})
    return Dataset(
        experiment_id=exp,
        experiment_name=name,
        run_ids=run_ids,
        names=names,
        parent_id=parent.info.run_id,
        child_ids=children,
        xss_run_id=xss_run,
        xss_experiment_id=xss_exp,
        long_run_id=lr,
        params=params,
    )


def log_xss_run(client: MlflowClient, experiment_id: str) -> str:
    run = client.create_run(experiment_id, run_name=XSS)
    rid = run.info.run_id
    client.log_batch(
        rid,
        params=[Param("payload", XSS)],
        tags=[
            RunTag("note", XSS),
            RunTag("mlflow.note.content", f"# Notes {XSS}\n\nSome **bold** text and a [link](javascript:alert(1)).\n\n{XSS}"),
        ],
        metrics=[Metric("loss", 0.25, int(time.time() * 1000), 0)],
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "page.html").write_text(f"<html><body>{XSS}<script>alert(2)</script></body></html>")
        (d / "drawing.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(3)"><script>alert(4)</script></svg>')
        (d / "notes.md").write_text(f"# Readme\n\n{XSS}\n\n- item one\n- item two\n")
        (d / "table.csv").write_text(f"a,b,c\n1,2,{XSS}\n3,4,5\n")
        (d / "config.json").write_text(json.dumps({"lr": 0.1, "payload": XSS}))
        (d / "config.yaml").write_text(f"lr: 0.1\npayload: '{XSS}'\n")
        (d / "train.log").write_text("".join(f"epoch {i} loss {1 / (i + 1):.3f}\n" for i in range(20)))
        (d / f"{XSS}.txt").write_text("a file whose name is a payload")
        model = d / "model"
        model.mkdir()
        (model / "MLmodel").write_text("artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\n")
        # A real PNG: 2x2 pixels, written by hand so the test needs no imaging library.
        (d / "pixel.png").write_bytes(_png())
        client.log_artifacts(rid, str(d))
    client.set_terminated(rid)
    return rid


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00\x00\xff\x00" for _ in range(2))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
