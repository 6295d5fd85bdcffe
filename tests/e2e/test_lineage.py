"""The lineage graph end to end: from a served prediction back to the exact data slice, code and
environment, as of now and as of before the data was re-versioned.

The story: a preprocessing run (real mlflow client) derives a cleaned dataset from a raw one,
registered with digests through the native API; a training run logs its input with
`mlflow.log_input`, is tagged with its commit, uses a registered slice of the cleaned data and
registers a model with `log_model(..., registered_model_name=...)`; a deployment serves the
version; 2,000 predictions arrive in one batch; `cairn predictions trace --json` returns the
chain with every digest. Then the data is re-versioned, the model retrained and redeployed, and
`--as-of` a time before that still gives the old chain.

OpenLineage run events sent with the official `openlineage-python` client appear in the graph.
Bad input (unknown nodes, cycles, malformed events, oversized and strict batches) gets clear
errors and stores nothing: the audit log does not move. All Cairn-only.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
import uuid
from urllib.parse import quote

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import dataset_version_dataset, output_statistics_output_dataset, schema_dataset
from sklearn.linear_model import LogisticRegression

from servers import Server, cairn_cli

pytestmark = pytest.mark.cairn_only

V1 = "/api/cairn/v1"
REPO = "https://example.com/acme/churn.git"
BATCH = 2000
MAX_BATCH = 10_000


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


class Lineage:
    """The native lineage API of one server, plus the `cairn` CLI over the same store."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.base = server.url.rstrip("/")

    def call(self, method: str, path: str, expect: int = 200, **kwargs) -> dict | str:
        response = requests.request(method, self.base + path, timeout=120, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def error(self, method: str, path: str, status: int, code: str, **kwargs) -> str:
        """Asserts an error answer and returns its message."""
        body = self.call(method, path, expect=status, **kwargs)
        assert body["error_code"] == code, body
        return body["message"]

    def node(self, ref: str, digest: str | None = None, **attributes) -> dict:
        kind, key = ref.split(":", 1)
        body: dict = {"attributes": attributes}
        if digest is not None:
            body["digest"] = digest
        return self.call("PUT", f"{V1}/lineage/nodes/{kind}/{quote(key, safe='/@')}", json=body)["node"]

    def edge(self, source: str, kind: str, target: str) -> dict:
        return self.call("POST", f"{V1}/lineage/edges", json={"source": source, "kind": kind, "target": target})["edge"]

    def slice(self, dataset: str, spec: dict) -> dict:
        return self.call("POST", f"{V1}/lineage/slices", json={"dataset": dataset, "spec": spec})["node"]

    def deploy(self, name: str, model_version: str) -> dict:
        return self.call("POST", f"{V1}/deployments/{name}", json={"model_version": model_version})["edge"]

    def predict(self, predictions: list[dict], strict: bool = False) -> dict:
        return self.call("POST", f"{V1}/predictions", json={"predictions": predictions, "strict": strict})

    def get(self, path: str, **params) -> dict | str:
        return self.call("GET", V1 + path, params=params)

    def last_seq(self) -> int:
        """The newest audit event's sequence number: a refused request must not move it."""
        after = 0
        while True:
            page = self.get("/audit/events", after=after, limit=10_000)
            if not page["events"]:
                return after
            after = page["events"][-1]["seq"]
            if "next_after" not in page:
                return after

    def cli(self, *args: str) -> dict:
        """A `cairn` lineage command with `--json`, against the server's store."""
        out = self.cli_raw(*args, "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def cli_raw(self, *args: str):
        return cairn_cli(*args, "--backend-store-uri", self.server.backend_uri)


def node_ids(graph: dict) -> dict[str, dict]:
    return {n["id"]: n for n in graph["nodes"]}


def edge_set(graph: dict) -> set[tuple[str, str, str]]:
    return {(e["source"], e["kind"], e["target"]) for e in graph["edges"]}


def frame(version: int) -> pd.DataFrame:
    """The cleaned data of one version: different rows per version, so different digests."""
    rng = np.random.default_rng(version)
    x = rng.normal(size=(40, 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": (x[:, 0] + x[:, 1] > 0).astype(int)})


def prepare(lin: Lineage, experiment_id: str, unique: str, version: int) -> dict:
    """A preprocessing run deriving `clean@v<version>` from `raw@v<version>`, with digests."""
    raw = f"dataset:raw-{unique}@v{version}"
    clean = f"dataset:clean-{unique}@v{version}"
    raw_digest, clean_digest = sha(f"raw bytes {version}"), sha(f"clean bytes {version}")
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"preprocess-v{version}") as run:
        mlflow.log_param("dropna", "true")
    prep = f"run:{run.info.run_id}"
    lin.node(raw, digest=raw_digest, source_uri=f"s3://lake/raw/v{version}.parquet", row_count=100)
    lin.node(clean, digest=clean_digest, source_uri=f"s3://lake/clean/v{version}.parquet", row_count=40)
    lin.edge(prep, "used", raw)
    lin.edge(clean, "was_generated_by", prep)
    lin.edge(clean, "was_derived_from", raw)
    part = lin.slice(clean, {"partitions": ["2026-10", "2026-09"], "sample_fraction": 0.5, "seed": 7})
    assert part["id"] == f"slice:{part['digest']}"
    return {"raw": raw, "clean": clean, "raw_digest": raw_digest, "clean_digest": clean_digest,
            "prep": prep, "slice": part["id"], "slice_digest": part["digest"]}


def train(lin: Lineage, experiment_id: str, unique: str, data: dict, model_name: str, version: int) -> dict:
    """A training run on `data`'s slice that registers the next version of `model_name`."""
    df = frame(version)
    tags = {"mlflow.source.git.commit": "c0ffee" * 6 + "abcd", "mlflow.source.git.repoURL": REPO}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-v{version}", tags=tags) as run:
        mlflow.log_input(mlflow.data.from_pandas(df, name=f"clean-{unique}"), context="training")
        model = LogisticRegression().fit(df[["a", "b"]].to_numpy(), df["label"].to_numpy())
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=model_name)
    run_ref = f"run:{run.info.run_id}"
    lin.edge(run_ref, "used", data["slice"])
    return {"run": run_ref, "model_version": f"model-version:{model_name}/{info.registered_model_version}"}


def predictions(prefix: str, deployment: str, count: int) -> list[dict]:
    return [
        {"prediction_id": f"{prefix}-{i}", "deployment": deployment, "input_digest": sha(f"{prefix} in {i}"),
         "output_digest": sha(f"{prefix} out {i}")}
        for i in range(count)
    ]


def test_a_prediction_traces_back_to_its_data_code_and_environment_as_of_any_time(
    tracking: Server, client: MlflowClient, experiment_id: str, unique: str
) -> None:
    lin = Lineage(tracking)
    model_name = f"churn-{unique}"
    deployment = f"churn-api-{unique}"

    v1 = prepare(lin, experiment_id, unique, 1)
    m1 = train(lin, experiment_id, unique, v1, model_name, 1)
    assert m1["model_version"] == f"model-version:{model_name}/1"
    completeness = lin.get("/lineage/completeness", node=m1["model_version"])["completeness"]
    assert completeness == {"complete": True, "missing": []}
    lin.deploy(deployment, f"{model_name}/1")

    batch = predictions(f"{unique}-v1", deployment, BATCH)
    started = time.monotonic()
    report = lin.predict(batch)
    elapsed = time.monotonic() - started
    assert report == {"accepted": BATCH, "flagged": []}
    assert elapsed < 30, f"a batch of {BATCH} took {elapsed:.1f}s"

    # The chain, from the CLI, with every digest.
    first = f"{unique}-v1-0"
    trace = lin.cli("predictions", "trace", first)
    assert trace["prediction"]["prediction_id"] == first
    assert trace["prediction"]["deployment"] == deployment
    assert trace["prediction"]["model_version"] == m1["model_version"]
    assert trace["prediction"]["input_digest"] == batch[0]["input_digest"]
    assert trace["prediction"]["lineage_complete"] is True
    assert trace["completeness"]["complete"] is True
    nodes = node_ids(trace["lineage"])
    for ref in [f"prediction:{first}", f"deployment:{deployment}", m1["model_version"], m1["run"], v1["slice"],
                v1["clean"], v1["raw"], v1["prep"]]:
        assert ref in nodes, f"{ref} missing from the trace: {sorted(nodes)}"
    assert nodes[v1["raw"]]["digest"] == v1["raw_digest"]
    assert nodes[v1["clean"]]["digest"] == v1["clean_digest"]
    assert nodes[v1["slice"]]["digest"] == v1["slice_digest"]
    assert any(ref.startswith("code:") and ref.endswith("c0ffee" * 6 + "abcd") for ref in nodes), sorted(nodes)
    assert any(ref.startswith("env:") for ref in nodes), sorted(nodes)
    assert (m1["run"], "used", v1["slice"]) in edge_set(trace["lineage"])
    # The text form is an indented tree naming the same digests.
    text = lin.cli_raw("predictions", "trace", first)
    assert text.returncode == 0, text.stderr
    needles = [f"prediction {first}", v1["slice_digest"], v1["clean_digest"], v1["raw_digest"], "lineage:       complete"]
    for needle in needles:
        assert needle in text.stdout, f"{needle!r} not in:\n{text.stdout}"

    # Re-version the data, retrain, redeploy.
    time.sleep(0.05)
    before = now_ms()
    time.sleep(0.05)
    v2 = prepare(lin, experiment_id, unique, 2)
    m2 = train(lin, experiment_id, unique, v2, model_name, 2)
    assert m2["model_version"] == f"model-version:{model_name}/2"
    lin.deploy(deployment, f"{model_name}/2")
    assert lin.predict(predictions(f"{unique}-v2", deployment, 10))["accepted"] == 10

    newer = lin.cli("predictions", "trace", f"{unique}-v2-0")
    assert newer["prediction"]["model_version"] == m2["model_version"]
    newer_nodes = node_ids(newer["lineage"])
    assert v2["clean"] in newer_nodes and v1["clean"] not in newer_nodes
    assert newer_nodes[v2["clean"]]["digest"] == v2["clean_digest"]

    # As of before the re-versioning, the deployment served version 1 on the old data; now 2.
    args = ["lineage", "upstream", f"deployment:{deployment}", "--depth", "10"]
    then = node_ids(lin.cli(*args, "--as-of", str(before)))
    assert m1["model_version"] in then and m2["model_version"] not in then
    assert v1["clean"] in then and v2["clean"] not in then
    current = node_ids(lin.cli(*args))
    assert m2["model_version"] in current and m1["model_version"] not in current
    # The old prediction's trace as of then is the chain we saw then.
    before_rfc3339 = datetime.datetime.fromtimestamp(before / 1000, datetime.UTC).isoformat()
    again = lin.cli("predictions", "trace", first, "--as-of", before_rfc3339)
    assert set(node_ids(again["lineage"])) == set(nodes)
    # A node registered afterwards did not exist then.
    missing = lin.cli_raw("lineage", "show", v2["clean"], "--as-of", str(before), "--json")
    assert missing.returncode != 0 and v2["clean"] in missing.stderr, missing.stderr
    shown = lin.cli("lineage", "show", v2["clean"])
    assert shown["node"]["digest"] == v2["clean_digest"]

    # "Was version 2 trained on the same data as version 1?" No; same code and environment.
    diff = lin.get("/lineage/diff", left=m1["model_version"], right=m2["model_version"])
    assert diff["same_data"] is False
    assert diff["same_code"] is True
    assert v1["slice"] in diff["only_left"] and v2["slice"] in diff["only_right"]
    cli_diff = lin.cli("lineage", "diff", m1["model_version"], m2["model_version"])
    assert cli_diff["same_data"] is False and cli_diff["only_right"] == diff["only_right"]

    # Exports of the same subgraph.
    dot = lin.get("/lineage/export", node=m2["model_version"], format="dot")
    assert dot.startswith("digraph lineage {") and f'"{v2["slice"]}"' in dot
    prov = lin.get("/lineage/export", node=m2["model_version"], format="prov-json")
    assert any(v2["slice_digest"] == e.get("cairn:digest") for e in prov["entity"].values())
    assert prov["wasDerivedFrom"] and prov["used"]
    cli_dot = lin.cli_raw("lineage", "export", m2["model_version"], "--format", "dot")
    assert cli_dot.returncode == 0 and cli_dot.stdout.startswith("digraph lineage {"), cli_dot.stderr

    # raw ← clean ← slice ← training run ← logged model ← model version: five edges away.
    downstream = lin.get("/lineage/downstream", node=v1["raw"], depth=6)
    assert m1["model_version"] in node_ids(downstream) and m2["model_version"] not in node_ids(downstream)

    health = lin.get("/lineage/health")
    assert health["model_versions"] >= 2 and health["predictions"] >= BATCH + 10
    assert lin.cli("lineage", "health")["predictions"] == health["predictions"]

    # All of it went through the audit chain, and the chain verifies.
    report = lin.call("POST", f"{V1}/audit/verify")
    assert report["ok"] is True, report["problems"]


def iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def test_openlineage_run_events_from_the_official_client_appear_in_the_graph(tracking: Server, unique: str) -> None:
    lin = Lineage(tracking)
    ol = OpenLineageClient(url=tracking.url)
    run_id = str(uuid.uuid4())
    job = Job(namespace="airflow", name=f"clean_sales_{unique}")
    inputs = [
        InputDataset(
            namespace="s3://raw",
            name=f"sales-{unique}",
            facets={
                "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v7"),
                "schema": schema_dataset.SchemaDatasetFacet(
                    fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="int")]
                ),
            },
        )
    ]
    outputs = [
        OutputDataset(
            namespace="s3://clean",
            name=f"sales-{unique}",
            outputFacets={
                "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=1200)
            },
        )
    ]
    ol.emit(RunEvent(eventType=RunState.START, eventTime=iso(), run=Run(runId=run_id), job=job, inputs=inputs))
    ol.emit(
        RunEvent(eventType=RunState.COMPLETE, eventTime=iso(), run=Run(runId=run_id), job=job, inputs=inputs, outputs=outputs)
    )
    # Static metadata is acknowledged (the client raises on an error answer).
    ol.emit(DatasetEvent(eventTime=iso(), dataset=StaticDataset(namespace="s3://clean", name=f"sales-{unique}")))

    output = f"dataset:s3://clean/sales-{unique}@unversioned"
    upstream = lin.get("/lineage/upstream", node=output)
    nodes = node_ids(upstream)
    assert f"run:{run_id}" in nodes and f"dataset:s3://raw/sales-{unique}@v7" in nodes, sorted(nodes)
    assert (output, "was_generated_by", f"run:{run_id}") in edge_set(upstream)
    assert (f"run:{run_id}", "used", f"dataset:s3://raw/sales-{unique}@v7") in edge_set(upstream)
    run = lin.get(f"/lineage/nodes/run/{run_id}")["node"]
    assert run["attributes"]["job_name"] == f"clean_sales_{unique}"

    # A malformed event is refused naming the field, and nothing is stored.
    seq = lin.last_seq()
    event = {"eventType": "COMPLETE", "eventTime": iso(), "run": {"runId": ""}, "job": {"namespace": "a", "name": "b"},
             "producer": "https://example.com",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
    response = requests.post(tracking.url + "/api/v1/lineage", json=event, timeout=60)
    assert response.status_code == 400 and "run.runId" in response.json()["message"], response.text
    event["run"]["runId"] = str(uuid.uuid4())
    event["inputs"] = [{"namespace": "s3://x"}]
    response = requests.post(tracking.url + "/api/v1/lineage", json=event, timeout=60)
    assert response.status_code == 400 and "inputs[0].name" in response.json()["message"], response.text
    assert lin.last_seq() == seq


def test_bad_input_gets_clear_errors_and_stores_nothing(
    tracking: Server, client: MlflowClient, experiment_id: str, unique: str
) -> None:
    lin = Lineage(tracking)
    a, b = f"dataset:a-{unique}@1", f"dataset:b-{unique}@1"
    lin.node(a, digest=sha("a"))
    lin.node(b, digest=sha("b"))
    lin.edge(b, "was_derived_from", a)
    seq = lin.last_seq()

    # Unknown nodes.
    message = lin.error("GET", f"{V1}/lineage/nodes/dataset/nope-{unique}@1", 404, "RESOURCE_DOES_NOT_EXIST")
    assert f"nope-{unique}@1" in message
    message = lin.error("POST", f"{V1}/lineage/edges", 404, "RESOURCE_DOES_NOT_EXIST",
                        json={"source": a, "kind": "was_derived_from", "target": f"dataset:ghost-{unique}@1"})
    assert f"ghost-{unique}" in message
    unknown_run = f"run:{uuid.uuid4().hex}"
    lin.error("GET", f"{V1}/lineage/upstream", 404, "RESOURCE_DOES_NOT_EXIST", params={"node": unknown_run})
    lin.error("GET", f"{V1}/predictions/never-{unique}/trace", 404, "RESOURCE_DOES_NOT_EXIST")
    # An edge closing a cycle.
    message = lin.error("POST", f"{V1}/lineage/edges", 400, "INVALID_PARAMETER_VALUE",
                        json={"source": a, "kind": "was_derived_from", "target": b})
    assert "cycle" in message
    # Lineage records are immutable: the same node with another digest is refused.
    kind, key = a.split(":", 1)
    response = requests.put(f"{lin.base}{V1}/lineage/nodes/{kind}/{key}", json={"digest": sha("other")}, timeout=60)
    assert response.status_code == 400, response.text
    # Malformed requests.
    lin.error("POST", f"{V1}/lineage/slices", 400, "INVALID_PARAMETER_VALUE",
              json={"dataset": a, "spec": {"sample_fraction": 0.5}})
    lin.error("POST", f"{V1}/lineage/edges", 400, "INVALID_PARAMETER_VALUE",
              json={"source": a, "kind": "ate", "target": b})
    # A batch over the limit.
    too_many = predictions(f"{unique}-big", "nowhere", MAX_BATCH + 1)
    message = lin.error("POST", f"{V1}/predictions", 400, "INVALID_PARAMETER_VALUE", json={"predictions": too_many})
    assert str(MAX_BATCH) in message
    assert lin.last_seq() == seq

    # A model version with incomplete lineage: no dataset, no code version.
    model_name = f"bare-{unique}"
    with mlflow.start_run(experiment_id=experiment_id):
        model = LogisticRegression().fit(np.array([[0.0], [1.0]]), np.array([0, 1]))
        mlflow.sklearn.log_model(model, name="model", registered_model_name=model_name)
    completeness = lin.get("/lineage/completeness", node=f"{model_name}/1")["completeness"]
    assert completeness["complete"] is False
    assert "code_version" in completeness["missing"] and "dataset" in completeness["missing"], completeness
    batch = [{"prediction_id": f"{unique}-bare-{i}", "model_version": f"{model_name}/1", "input_digest": sha(str(i))}
             for i in range(3)]
    seq = lin.last_seq()
    message = lin.error("POST", f"{V1}/predictions", 400, "INVALID_PARAMETER_VALUE",
                        json={"predictions": batch, "strict": True})
    # The refusal names the version and what its lineage lacks.
    assert f"model-version:{model_name}/1" in message and "code_version" in message, message
    assert lin.last_seq() == seq
    lin.error("GET", f"{V1}/predictions/{unique}-bare-0/trace", 404, "RESOURCE_DOES_NOT_EXIST")
    # Without strict, the same batch is stored and flagged.
    report = lin.predict(batch)
    assert report["accepted"] == 3 and sorted(report["flagged"]) == sorted(p["prediction_id"] for p in batch)
    trace = lin.get(f"/predictions/{unique}-bare-0/trace")
    assert trace["prediction"]["lineage_complete"] is False
    assert "code_version" in trace["completeness"]["missing"]
