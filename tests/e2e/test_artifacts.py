"""Proxied artifacts through the real client: log_artifact, log_artifacts with nested folders,
log_text/log_dict, list and download (file and folder).

Listing below the root goes through the run's own `mlflow-artifacts:/` repository: the client's
`list_artifacts(run_id, path)` also searches logged models named like `path`, an API Cairn does
not serve yet."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient


def test_log_list_and_download_artifacts(client: MlflowClient, experiment_id: str, tmp_path: Path) -> None:
    run_id = client.create_run(experiment_id).info.run_id
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:/")

    single = tmp_path / "notes.txt"
    single.write_text("hello artifacts")
    client.log_artifact(run_id, str(single))

    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "top.bin").write_bytes(bytes(range(256)) * 40)
    (tree / "sub" / "mid.txt").write_text("middle")
    (tree / "sub" / "deeper" / "leaf.json").write_text('{"k": 1}')
    client.log_artifacts(run_id, str(tree), artifact_path="model")
    client.log_text(run_id, "some text", "texts/a.txt")
    client.log_dict(run_id, {"a": [1, 2]}, "config.json")

    root = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert root == {("notes.txt", False), ("model", True), ("texts", True), ("config.json", False)}
    repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
    model = {f.path: f for f in repo.list_artifacts("model")}
    assert set(model) == {"model/top.bin", "model/sub"}
    assert model["model/top.bin"].file_size == 256 * 40
    assert model["model/sub"].is_dir
    assert [f.path for f in repo.list_artifacts("model/sub/deeper")] == ["model/sub/deeper/leaf.json"]

    out = Path(client.download_artifacts(run_id, "notes.txt", str(tmp_path / "one")))
    assert out.read_text() == "hello artifacts"
    (tmp_path / "all").mkdir()
    folder = Path(repo.download_artifacts("model", str(tmp_path / "all")))
    assert (folder / "top.bin").read_bytes() == (tree / "top.bin").read_bytes()
    assert (folder / "sub" / "deeper" / "leaf.json").read_text() == '{"k": 1}'
    config = Path(client.download_artifacts(run_id, "config.json", str(tmp_path / "cfg")))
    assert json.loads(config.read_text()) == {"a": [1, 2]}
