"""The data the governance views are tested on: the provenance story of the lineage end-to-end
test (tests/e2e/test_lineage.py) told through the real clients on a server of its own, started
with a promotion policy, plus a governed model whose version lacks the facts the policy asks for.

raw → clean dataset (a preprocessing run), a slice, a training run that registers version 1, a
deployment serving it, predictions; then the data is re-versioned, the model retrained (version
2) and redeployed. `before` is an instant between the two rounds, for the "as of" views.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from browser import Browser
from servers import REPO_ROOT, Server
from test_lineage import Lineage, predictions, prepare, train

XSS = "<img src=x onerror=alert(1)>"

POLICY = {
    "rules": [
        {
            "name": "champions need full lineage",
            "applies_to": {"models": ["governed-*"], "aliases": ["champion"], "stages": ["Production"]},
            "require": {"dataset_digests": True, "code_version": True, "environment": True, "tags": ["validated_by"]},
        }
    ]
}


@dataclass
class Story:
    url: str
    model: str
    deployment: str
    before: int  # ms: after round 1, before the re-versioning
    v1: dict
    v2: dict
    m1: dict
    m2: dict
    governed: str  # a model whose version 1 lacks lineage
    governed_run: str
    first_prediction: str
    xss_model: str


@pytest.fixture(scope="session")
def gov_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    workdir = tmp_path_factory.mktemp("cairn-gov")
    policy = Path(workdir) / "policy.json"
    policy.write_text(json.dumps(POLICY))
    server = Server(
        kind="cairn", backend="sqlite", backend_uri=f"sqlite:///{workdir / 'store.db'}", workdir=workdir, args=["--policy-file", str(policy)]
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def story(gov_server: Server) -> Story:
    url = gov_server.url
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(url)
    try:
        return tell_story(gov_server)
    finally:
        mlflow.set_tracking_uri(previous)


def tell_story(server: Server) -> Story:
    lin = Lineage(server)
    client = MlflowClient(tracking_uri=server.url)
    unique = str(int(time.time() * 1000))
    experiment_id = client.create_experiment(f"provenance-{unique}")
    model, deployment = f"churn-{unique}", f"churn-api-{unique}"

    v1 = prepare(lin, experiment_id, unique, 1)
    m1 = train(lin, experiment_id, unique, v1, model, 1)
    lin.deploy(deployment, f"{model}/1")
    client.set_registered_model_alias(model, "champion", "1")
    batch = predictions(f"{unique}-v1", deployment, 20)
    lin.predict(batch)

    time.sleep(0.05)
    before = int(time.time() * 1000)
    time.sleep(0.05)
    v2 = prepare(lin, experiment_id, unique, 2)
    m2 = train(lin, experiment_id, unique, v2, model, 2)
    lin.deploy(deployment, f"{model}/2")
    client.set_registered_model_alias(model, "champion", "2")
    client.transition_model_version_stage(model, "1", "Archived")
    lin.predict(predictions(f"{unique}-v2", deployment, 5))

    # A governed model whose only version comes from a bare run: no data, code or environment.
    governed = f"governed-{unique}"
    bare = client.create_run(experiment_id, run_name="bare")
    client.log_text(bare.info.run_id, "weights", "model/weights.txt")
    client.set_terminated(bare.info.run_id)
    client.create_registered_model(governed)
    client.create_model_version(governed, f"runs:/{bare.info.run_id}/model", run_id=bare.info.run_id)
    lin.predict([{"prediction_id": f"{unique}-direct-0", "model_version": f"{governed}/1", "input_digest": "ab" * 32}])

    # A model whose name, tag and description carry a script payload.
    xss_model = f"{XSS} {unique}"
    client.create_registered_model(xss_model, tags={"payload": XSS}, description=f"# {XSS}")
    return Story(
        url=server.url, model=model, deployment=deployment, before=before, v1=v1, v2=v2, m1=m1, m2=m2,
        governed=governed, governed_run=bare.info.run_id, first_prediction=f"{unique}-v1-0", xss_model=xss_model,
    )


@pytest.fixture
def gov(driver, gov_server: Server, story: Story, request: pytest.FixtureRequest) -> Browser:
    """The shared browser pointed at the governance server, checked like `browser`."""
    shots = REPO_ROOT / ".test-work" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    b = Browser(driver, gov_server.url, shots)
    b.drain_console()
    yield b
    b.assert_no_alert()
    errors = [e for e in b.drain_console() if e["level"] == "SEVERE" and not b.expected_error(e["message"])]
    assert not errors, f"browser console errors in {request.node.name}: {errors}"


def api(story: Story, path: str, **params) -> dict:
    response = requests.get(story.url + "/api/cairn/v1" + path, params=params, timeout=60)
    response.raise_for_status()
    return response.json()
