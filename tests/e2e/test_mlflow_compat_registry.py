"""Registry behaviours MLflow's own server tests rely on (issue 12, groups 4 and 5).

- A model version may name a run the server does not know (`runs:/<id>/model` with that run
  id): MLflow registers it, and so must Cairn. Cairn additionally reports the version's lineage
  as lacking its training run.
- Registering a version from a logged model (`model_id`) lists the version in the logged model's
  `mlflow.modelVersions` tag, in the exact JSON MLflow writes, each version once.
"""

from __future__ import annotations

import uuid

import pytest
import requests
from mlflow.tracking import MlflowClient


def test_a_version_may_name_an_unknown_run(client: MlflowClient, unique: str):
    name = f"ghost-{unique}"
    client.create_registered_model(name)
    ghost = uuid.uuid4().hex
    created = client.create_model_version(name, f"runs:/{ghost}/model", ghost)
    assert created.version == "1"
    assert created.run_id == ghost
    again = client.create_model_version(name, f"runs:/{ghost}/other", ghost)
    assert again.version == "2"

    fetched = client.get_model_version(name, "1")
    assert fetched.run_id == ghost
    assert fetched.source == f"runs:/{ghost}/model"
    found = client.search_model_versions(f"run_id = '{ghost}'")
    assert sorted(v.version for v in found) == ["1", "2"]
    assert [v.version for v in client.get_latest_versions(name)] == ["2"]


def test_an_unknown_run_still_has_to_match_its_source(client: MlflowClient, unique: str):
    name = f"ghost-{unique}"
    client.create_registered_model(name)
    with pytest.raises(Exception) as excinfo:
        client.create_model_version(name, f"runs:/{uuid.uuid4().hex}/model", uuid.uuid4().hex)
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.cairn_only
def test_a_version_of_an_unknown_run_lacks_its_training_run(client: MlflowClient, tracking, unique: str):
    name = f"ghost-{unique}"
    client.create_registered_model(name)
    ghost = uuid.uuid4().hex
    client.create_model_version(name, f"runs:/{ghost}/model", ghost)
    reply = requests.get(
        f"{tracking.url}/api/cairn/v1/lineage/completeness", params={"node": f"{name}/1"}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    completeness = reply.json()["completeness"]
    assert completeness["complete"] is False
    assert "training_run" in completeness["missing"], completeness


def test_versions_from_a_logged_model_are_listed_in_its_tag(client: MlflowClient, experiment_id: str, unique: str):
    name = f"tagged-{unique}"
    client.create_registered_model(name)
    model = client.create_logged_model(experiment_id=experiment_id)
    assert "mlflow.modelVersions" not in client.get_logged_model(model.model_id).tags

    client.create_model_version(name=name, source=model.artifact_location, model_id=model.model_id)
    tags = client.get_logged_model(model.model_id).tags
    assert tags["mlflow.modelVersions"] == f'[{{"name": "{name}", "version": 1}}]'

    client.create_model_version(name=name, source=model.artifact_location, model_id=model.model_id)
    tags = client.get_logged_model(model.model_id).tags
    expected = f'[{{"name": "{name}", "version": 1}}, {{"name": "{name}", "version": 2}}]'
    assert tags["mlflow.modelVersions"] == expected


def test_a_version_without_a_logged_model_tags_nothing(client: MlflowClient, experiment_id: str, unique: str):
    name = f"untagged-{unique}"
    client.create_registered_model(name)
    model = client.create_logged_model(experiment_id=experiment_id)
    run = client.create_run(experiment_id)
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    assert "mlflow.modelVersions" not in client.get_logged_model(model.model_id).tags
