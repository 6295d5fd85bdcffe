"""The governance views on a server with `--auth basic` and `--default-permission NO_PERMISSIONS`,
seen by two users: the admin, and a reader granted READ on one experiment and one registered
model only.

The data, made as the admin with the real `mlflow` client (experiments, runs, registry) and the
native API (lineage, deployments, predictions): a preprocessing run in the open experiment makes
`clean` from `raw`; a training run in the closed experiment, tagged and scored, used `clean` and
registered version 1 of both `open-model` (the reader's) and `closed-model` (not theirs); the
deployment served `open-model/1`, then `closed-model/1`, and made a prediction under each.

The reader must be able to use every governance view for what they may read, with what they may
not read shown as a redacted placeholder; the audit view and "verify the chain" are the admin's
(hidden in the navigation, refused by the server)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient
from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from servers import Server  # noqa: E402

ADMIN, ADMIN_PASSWORD = "admin", "admin-gov-password"
READER, READER_PASSWORD = "reader", "reader-gov-password"
V1 = "/api/cairn/v1"
# Values only the closed experiment's run holds: none may reach the reader's screen.
SECRET_TAG, SECRET_AUC = "ana-the-secret-reviewer", 0.9137

POLICY = {
    "rules": [
        {
            "name": "champions are validated",
            "applies_to": {"aliases": ["champion"]},
            "require": {"dataset_digests": True, "code_version": True, "tags": ["validated_by"], "metrics": [{"key": "auc", "min": 0.8}]},
        }
    ]
}


@dataclass
class World:
    url: str
    open_experiment: str
    closed_experiment: str
    prep_run: str
    train_run: str
    raw: str
    clean: str
    deployment: str
    open_prediction: str
    closed_prediction: str


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("cairn-ui-gov-auth")
    policy = Path(workdir) / "policy.json"
    policy.write_text(json.dumps(POLICY))
    server = Server(
        kind="cairn",
        backend="sqlite",
        backend_uri=f"sqlite:///{workdir / 'store.db'}",
        workdir=workdir,
        env={"CAIRN_ADMIN_USERNAME": ADMIN, "CAIRN_ADMIN_PASSWORD": ADMIN_PASSWORD},
        args=["--auth", "basic", "--default-permission", "NO_PERMISSIONS", "--policy-file", str(policy)],
    )
    server.start()
    yield server
    server.stop()


def native(server: Server, method: str, path: str, body: dict | None = None, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> requests.Response:
    return requests.request(method, f"{server.url}{path}", json=body, auth=(user, password), timeout=60)


@pytest.fixture(scope="module")
def world(secured: Server) -> World:
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)
    try:
        return build_world(secured)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_world(server: Server) -> World:
    client = MlflowClient(tracking_uri=server.url)

    def ok(method: str, path: str, body: dict) -> dict:
        r = native(server, method, path, body)
        assert r.ok, (path, r.status_code, r.text)
        return r.json()

    ok("POST", "/api/2.0/mlflow/users/create", {"username": READER, "password": READER_PASSWORD})
    open_exp = client.create_experiment("open-research")
    closed_exp = client.create_experiment("closed-research")
    prep = client.create_run(open_exp, run_name="preprocess").info.run_id
    client.set_terminated(prep)
    commit = "c0ffee" * 6 + "abcd"
    train = client.create_run(
        closed_exp, run_name="secret-training", tags={"mlflow.source.git.commit": commit, "mlflow.source.git.repoURL": "https://example.invalid/ml.git", "validated_by": SECRET_TAG}
    ).info.run_id
    client.log_metric(train, "auc", SECRET_AUC)
    client.set_terminated(train)
    raw, clean = "dataset:raw-events@v1", "dataset:clean-events@v1"
    for node, digest in ((raw, "aa" * 32), (clean, "bb" * 32)):
        kind, key = node.split(":", 1)
        ok("PUT", f"{V1}/lineage/nodes/{kind}/{key}", {"digest": digest})
    for source, kind, target in ((f"run:{prep}", "used", raw), (clean, "was_generated_by", f"run:{prep}"), (clean, "was_derived_from", raw), (f"run:{train}", "used", clean)):
        ok("POST", f"{V1}/lineage/edges", {"source": source, "kind": kind, "target": target})
    for model in ("open-model", "closed-model"):
        client.create_registered_model(model, description=f"The {model} of the access-control story.")
        client.create_model_version(model, f"runs:/{train}/model", run_id=train)
    # The policy passes (digests, commit, tag and metric are all there), so the alias moves.
    client.set_registered_model_alias("open-model", "champion", "1")
    deployment = "scoring-api"
    ok("POST", f"{V1}/deployments/{deployment}", {"model_version": "open-model/1"})
    ok("POST", f"{V1}/predictions", {"predictions": [{"prediction_id": "p-open-0", "deployment": deployment, "input_digest": "cc" * 32}]})
    ok("POST", f"{V1}/deployments/{deployment}", {"model_version": "closed-model/1"})
    ok("POST", f"{V1}/predictions", {"predictions": [{"prediction_id": "p-closed-0", "deployment": deployment, "input_digest": "dd" * 32}]})
    for resource_type, resource_id in (("experiment", open_exp), ("registered_model", "open-model")):
        ok("POST", "/api/2.0/mlflow/users/permissions/grant", {"username": READER, "resource_type": resource_type, "resource_id": resource_id, "permission": "READ"})
    return World(server.url, open_exp, closed_exp, prep, train, raw, clean, deployment, "p-open-0", "p-closed-0")


@pytest.fixture
def page(browser, secured: Server):
    """The shared browser pointed at the secured server, signed out."""
    browser.base = secured.url
    browser.open()
    browser.js("sessionStorage.clear()")
    browser.open()
    browser.wait_mark("login")
    return browser


def sign_in(page, user: str, password: str) -> None:
    page.wait("input[name=username]").send_keys(user)
    page.find("input[name=password]").send_keys(password)
    page.find(".login-form button[type=submit]").click()
    page.wait_mark("experiments")
    page.wait_text(".account", user)


def nav_labels(page) -> list[str]:
    return [a.text for a in page.find_all("nav[aria-label=Main] a")]


def assert_hidden(page, world: World, where: str) -> None:
    """Nothing of the closed experiment's run or the closed model is on the page."""
    text = page.find("main").text + page.driver.page_source
    for secret in (world.train_run, "closed-model", "secret-training", SECRET_TAG, str(SECRET_AUC)):
        assert secret not in text, f"{where} shows {secret!r} to the reader"


def test_the_reader_uses_the_registry_for_what_they_may_read(page, world):
    sign_in(page, READER, READER_PASSWORD)
    page.go("/models")
    page.wait_mark("models")
    page.wait_text("main", "open-model")
    assert "closed-model" not in page.find("main").text, "the registry search is filtered"
    page.shot("gov-auth-reader-models")
    # The model page: version 1's source run is in the closed experiment (its 403 is expected),
    # so the versions table shows a placeholder where the run's id would be.
    page.expect_console_error(r"403")
    page.go("/models/open-model")
    page.wait_mark("model")
    page.wait_text("main", "champion")
    run_cell = page.wait(".versions-table tbody tr td .redacted")
    assert "redacted run" in run_cell.text, run_cell.text
    assert_hidden(page, world, "the model page")
    page.shot("gov-auth-reader-model")
    # The version page: the record and its policy verdict, the source run a placeholder.
    page.go("/models/open-model/versions/1")
    page.wait_mark("version")
    source_run = page.wait("dt + dd .redacted")
    assert "redacted run" in source_run.text, source_run.text
    rule = page.wait(".policy-rule")
    assert "passes" in rule.text, rule.text
    tag = page.find(".check-list li[data-fact='tag:validated_by']")
    assert "met" in tag.text and tag.find_elements(By.CSS_SELECTOR, ".redacted"), tag.text
    auc = page.find(".check-list li[data-fact='metric:auc']")
    assert "met" in auc.text and auc.find_elements(By.CSS_SELECTOR, ".redacted"), auc.text
    # Facts that are not the run's stay whole: the dataset digests and the commit.
    assert page.find_all(f".check-list li[data-fact='dataset_digest:{world.clean}']"), rule.text
    assert_hidden(page, world, "the version page")
    page.shot("gov-auth-reader-version")


def test_the_reader_explores_lineage_with_hidden_nodes_as_placeholders(page, world):
    sign_in(page, READER, READER_PASSWORD)
    page.go("/lineage?node=model-version:open-model/1&up=4&down=0")
    page.wait_mark("lineage")
    page.wait(f".graph-node[data-id='model-version:open-model/1']")
    # The training run is drawn, as a placeholder; the datasets and the open run are named.
    hidden = page.find_all(".graph-node.redacted-node")
    assert [h.get_attribute("class") for h in hidden if "kind-run" in h.get_attribute("class")], [h.get_attribute("class") for h in hidden]
    for node in (world.clean, world.raw, f"run:{world.prep_run}"):
        assert page.find_all(f".graph-node[data-id='{node}']"), f"{node} is readable and drawn"
    assert "outside your permissions" in page.find(".kind-legend").text
    assert_hidden(page, world, "the lineage explorer")
    run_placeholder = next(h for h in hidden if "kind-run" in h.get_attribute("class"))
    run_placeholder.click()
    panel = page.wait_text(".lineage-panel, aside", "outside your permissions")
    assert "Recentre" not in panel.text, panel.text
    page.shot("gov-auth-reader-lineage")


def test_the_reader_traces_a_prediction_and_sees_deployments_and_health(page, world):
    sign_in(page, READER, READER_PASSWORD)
    page.go(f"/trace?id={world.open_prediction}")
    page.wait_mark("trace")
    page.wait_text(".card", "open-model/1")
    steps = page.find_all(".trace-chain li")
    assert any("redacted run" in s.text for s in steps), [s.text for s in steps]
    assert any(world.clean in s.text for s in steps), [s.text for s in steps]
    assert_hidden(page, world, "the trace")
    page.shot("gov-auth-reader-trace")
    # The prediction the closed model made: the deployment is named, the version is not.
    page.go(f"/trace?id={world.closed_prediction}")
    page.wait_mark("trace", at_least=2)
    page.wait_text(".card", "redacted model version")
    assert_hidden(page, world, "the closed prediction's trace")

    page.go("/deployments")
    page.wait_mark("deployments")
    card = page.wait(f".deployment[data-deployment='{world.deployment}']")
    rows = [r.text for r in card.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert len(rows) == 2, rows
    assert any("open-model/1" in r for r in rows) and any("redacted model version" in r for r in rows), rows
    assert card.find_elements(By.CSS_SELECTOR, ".deploy-bar.redacted-bar")
    assert_hidden(page, world, "the deployments")
    page.shot("gov-auth-reader-deployments")

    page.go("/health")
    page.wait_mark("health")
    page.wait_text("main", "only admins may read")
    assert page.find(".stat-versions").text.endswith("%")
    incomplete = [r.text for r in page.find_all(".incomplete-table tbody tr")]
    assert any("open-model/1" in r for r in incomplete) and any("redacted model version" in r for r in incomplete), incomplete
    assert_hidden(page, world, "lineage health")
    page.shot("gov-auth-reader-health")


def test_the_audit_log_is_the_admins(page, world, secured):
    sign_in(page, READER, READER_PASSWORD)
    assert "Audit" not in nav_labels(page), nav_labels(page)
    page.go("/audit")
    box = page.wait(".admin-only")
    assert "for admins" in box.text, box.text
    assert not [b for b in page.find_all("button") if "Verify" in b.text]
    page.shot("gov-auth-reader-audit")
    # The server refuses the reader whatever the UI shows.
    for method, path in (("GET", f"{V1}/audit/events"), ("POST", f"{V1}/audit/verify")):
        r = native(secured, method, path, {} if method == "POST" else None, READER, READER_PASSWORD)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", (path, r.status_code, r.text)

    [b for b in page.find_all(".account button") if b.text == "Sign out"][0].click()
    page.wait(".login-form")
    sign_in(page, ADMIN, ADMIN_PASSWORD)
    assert "Audit" in nav_labels(page), nav_labels(page)
    page.go("/audit")
    page.wait_mark("audit")
    # The newest events are the grants that made the reader a reader, by the admin.
    page.wait_text("main", "grant_permission")
    [b for b in page.find_all("button") if b.text == "Verify the chain"][0].click()
    verdict = page.wait(".verify-result")
    assert "✓" in verdict.text, verdict.text
    page.shot("gov-auth-admin-audit")


def test_the_admin_sees_everything_the_reader_does_not(page, world):
    sign_in(page, ADMIN, ADMIN_PASSWORD)
    page.go("/models/open-model/versions/1")
    page.wait_mark("version")
    page.wait_text("dl.facts", "secret-training")
    tag = page.wait(".check-list li[data-fact='tag:validated_by']")
    assert SECRET_TAG in tag.text and not tag.find_elements(By.CSS_SELECTOR, ".redacted"), tag.text
    assert str(SECRET_AUC) in page.find(".check-list li[data-fact='metric:auc']").text
    page.shot("gov-auth-admin-version")
    page.go("/deployments")
    page.wait_mark("deployments")
    page.wait_text(".deployment", "closed-model/1")
    assert not page.find_all(".redacted")
    page.go("/lineage?node=model-version:open-model/1&up=4&down=0")
    page.wait_mark("lineage")
    page.wait(f".graph-node[data-id='run:{world.train_run}']")
    assert not page.find_all(".graph-node.redacted-node")
    page.shot("gov-auth-admin-lineage")
