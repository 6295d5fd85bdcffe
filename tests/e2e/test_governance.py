"""Governance end to end: promotion policies enforced on MLflow's own registry routes, and signed
lineage attestations that `cairn attest --verify` accepts and that fail once tampered with.

Cairn-only: MLflow has neither.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from servers import Server, cairn_cli

pytestmark = pytest.mark.cairn_only

POLICY = {
    "rules": [
        {
            "name": "production needs full lineage",
            "applies_to": {"models": ["churn*"], "stages": ["Production"], "aliases": ["champion"]},
            "require": {
                "dataset_digests": True,
                "code_version": True,
                "environment": True,
                "tags": ["validated_by"],
                "metrics": [{"key": "auc", "min": 0.8}],
            },
        }
    ]
}


def trained_version(client: MlflowClient, server: Server, name: str, tmp_path: Path, *, facts: bool) -> str:
    """A run with a model folder, registered as version 1 of `name`; with `facts`, the run also
    records what the policy asks for. Returns the run id."""
    experiment = client.create_experiment(f"gov-{name}")
    run = client.create_run(experiment).info.run_id
    model_dir = tmp_path / name / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "weights.bin").write_bytes(np.arange(64, dtype=np.uint8).tobytes())
    client.log_artifacts(run, str(model_dir), "model")
    if facts:
        record_facts(server, run)
    client.set_terminated(run)
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run}/model", run_id=run)
    return run


def record_facts(server: Server, run: str) -> None:
    """Data with a digest, a code version, an environment, the tag and a good metric."""
    mlflow.set_tracking_uri(server.url)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, source="s3://lake/churn/v1.parquet", name="churn-train")
    with mlflow.start_run(run_id=run):
        mlflow.log_input(dataset, context="training")
        mlflow.set_tags({
            "mlflow.source.git.commit": "4f1c0ffee",
            "mlflow.source.git.repoURL": "https://example.com/acme/churn.git",
            "cairn.environment.digest": "ab" * 32,
            "validated_by": "ana",
        })
        mlflow.log_metric("auc", 0.91)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_policy_blocks_promotion_through_mlflows_routes_and_names_every_missing_fact(
    make_server, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    server = make_server(backend, env={"CAIRN_POLICY_FILE": str(policy)})
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    client = MlflowClient(tracking_uri=server.url)

    run = trained_version(client, server, "churn-eu", tmp_path, facts=False)
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("churn-eu", "champion", "1")
    message = str(refused.value)
    assert "INVALID_STATE" in message or refused.value.error_code == "INVALID_STATE", message
    for fact in ["dataset", "code_version", "environment", "tag:validated_by", "metric:auc"]:
        assert fact in message, f"{fact} missing from: {message}"
    with pytest.raises(MlflowException, match="code_version"):
        client.transition_model_version_stage("churn-eu", "1", "Production")
    # Promotions the policy does not govern go through.
    client.set_registered_model_alias("churn-eu", "challenger", "1")
    client.transition_model_version_stage("churn-eu", "1", "Staging")

    record_facts(server, run)
    client.set_registered_model_alias("churn-eu", "champion", "1")
    client.transition_model_version_stage("churn-eu", "1", "Production")
    assert client.get_model_version_by_alias("churn-eu", "champion").version == "1"
    history = requests.get(f"{server.url}/api/cairn/v1/models/churn-eu/history", timeout=30).json()["history"]
    assert [e["alias"] for e in history if e["kind"] == "alias_set"] == ["challenger", "champion"]


def test_attestations_verify_and_any_tampering_fails(tracking: Server, client: MlflowClient, tmp_path: Path) -> None:
    name = f"churn-att-{tmp_path.name[-6:]}"
    run = trained_version(client, tracking, name, tmp_path, facts=True)
    store = ["--backend-store-uri", tracking.backend_uri]
    key = tmp_path / "release.key"
    made = cairn_cli("attest", "--generate-key", str(key))
    assert made.returncode == 0, made.stderr
    public = key.with_suffix(".pub")
    assert public.read_text().startswith("cairn-ed25519-public:")

    attestation = tmp_path / "att.json"
    signed = cairn_cli("attest", f"{name}@1", "--key", str(key), "--out", str(attestation), *store)
    assert signed.returncode == 0, signed.stderr
    envelope = json.loads(attestation.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["name"] == f"models:/{name}/1"
    assert len(statement["subject"][0]["digest"]["sha256"]) == 64
    ids = {n["id"] for n in statement["predicate"]["nodes"]}
    assert f"run:{run}" in ids and any(i.startswith("dataset:churn-train@") for i in ids), ids
    assert any(i.startswith("code:") for i in ids) and any(i.startswith("env:") for i in ids), ids
    assert statement["predicate"]["lineage_complete"] is True, statement["predicate"]["missing"]

    ok = cairn_cli("attest", "--verify", str(attestation), "--public-key", str(public), *store)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK")

    # A changed digest in the payload breaks the signature.
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    forged = dict(envelope, payload=base64.b64encode(json.dumps(statement).encode()).decode())
    forged_path = tmp_path / "forged.json"
    forged_path.write_text(json.dumps(forged))
    bad = cairn_cli("attest", "--verify", str(forged_path), "--public-key", str(public), *store)
    assert bad.returncode == 1 and "FAILED" in bad.stdout, bad.stdout + bad.stderr

    # Another key's signature is not this key's.
    other = tmp_path / "other.key"
    assert cairn_cli("attest", "--generate-key", str(other)).returncode == 0
    wrong = cairn_cli("attest", "--verify", str(attestation), "--public-key", str(other.with_suffix(".pub")), *store)
    assert wrong.returncode == 1, wrong.stdout
