"""Cross-site request forgery: a page on another origin must not change anything.

A browser sends "simple" cross-origin POSTs (`text/plain` or form bodies, no preflight) with the
page's `Origin`. Each of those is refused with 403 and changes nothing; a JSON route refuses a
non-JSON body with MLflow's 400 whoever sends it; the server's own origin and clients that send
no `Origin` (the mlflow client, curl) keep working.

Before this change, `runs/delete` with `Origin: https://evil.example` and a `text/plain` body
answered 200 and deleted the run.
"""

from __future__ import annotations

import json

import pytest
import requests

EVIL = "https://evil.example"


def simple_post(url: str, body: dict, origin: str | None = EVIL, content_type: str = "text/plain", **headers):
    """What a cross-site page can send without a preflight."""
    if origin is not None:
        headers["Origin"] = origin
    headers["Content-Type"] = content_type
    return requests.post(url, data=json.dumps(body), headers=headers, timeout=30)


@pytest.fixture
def run_id(client, experiment_id) -> str:
    return client.create_run(experiment_id).info.run_id


def test_foreign_origin_cannot_delete_a_run_or_an_experiment(tracking, client, experiment_id, run_id):
    api = tracking.url + "/api/2.0/mlflow/"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = simple_post(api + "runs/delete", {"run_id": run_id}, content_type=content_type)
        assert r.status_code == 403, (content_type, r.status_code, r.text)
        assert "Cross-origin request blocked" in r.text
    r = simple_post(api + "experiments/delete", {"experiment_id": experiment_id})
    assert r.status_code == 403, r.text
    # A JSON body from a foreign origin needs a preflight in a browser; sent anyway, it is refused.
    r = simple_post(api + "runs/delete", {"run_id": run_id}, content_type="application/json")
    assert r.status_code == 403, r.text
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def test_foreign_origin_cannot_restore_or_register(tracking, client, run_id, unique):
    api = tracking.url + "/api/2.0/mlflow/"
    client.delete_run(run_id)
    r = simple_post(api + "runs/restore", {"run_id": run_id})
    assert r.status_code == 403, r.text
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    name = f"csrf-{unique}"
    r = simple_post(api + "registered-models/create", {"name": name})
    assert r.status_code == 403, r.text
    assert client.search_registered_models(f"name = '{name}'") == []


def test_json_routes_refuse_other_content_types_from_anyone(tracking, client, run_id):
    api = tracking.url + "/api/2.0/mlflow/"
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        r = simple_post(api + "runs/delete", {"run_id": run_id}, origin=None, content_type=content_type)
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "Content-Type must be one of ['application/json']" in r.json()["message"]
    r = requests.post(api + "runs/delete", data=json.dumps({"run_id": run_id}), timeout=30)
    assert r.status_code == 400 and "Content-Type header is missing" in r.json()["message"], r.text
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_own_origin_and_clients_without_origin_work(tracking, client, experiment_id):
    api = tracking.url + "/api/2.0/mlflow/"
    run = client.create_run(experiment_id).info.run_id
    same = simple_post(api + "runs/delete", {"run_id": run}, origin=tracking.url, content_type="application/json")
    assert same.status_code == 200, same.text
    plain = simple_post(
        api + "runs/restore", {"run_id": run}, origin=None, content_type="application/json; charset=utf-8"
    )
    assert plain.status_code == 200, plain.text
    assert client.get_run(run).info.lifecycle_stage == "active"
    # Reads from any origin are the browser's business (it withholds the answer without CORS).
    r = requests.get(api + "experiments/get", params={"experiment_id": experiment_id}, headers={"Origin": EVIL}, timeout=30)
    assert r.status_code == 200


@pytest.mark.cairn_only
def test_sec_fetch_site_cross_site_is_refused_and_openlineage_is_guarded(tracking, run_id, client):
    api = tracking.url + "/api/2.0/mlflow/"
    r = requests.post(
        api + "runs/delete",
        json={"run_id": run_id},
        headers={"Sec-Fetch-Site": "cross-site"},
        timeout=30,
    )
    assert r.status_code == 403, r.text
    assert r.json() == {"error_code": "PERMISSION_DENIED", "message": "Cross-origin request blocked"}
    event = {
        "eventType": "START",
        "eventTime": "2026-12-01T00:00:00Z",
        "run": {"runId": "01890000-0000-7000-8000-000000000000"},
        "job": {"namespace": "csrf", "name": "job"},
        "producer": "https://evil.example",
    }
    r = simple_post(tracking.url + "/api/v1/lineage", event)
    assert r.status_code == 403, r.text
    r = simple_post(tracking.url + "/api/v1/lineage", event, origin=None)
    assert r.status_code == 400 and "Content-Type" in r.json()["message"], r.text
    assert client.get_run(run_id).info.lifecycle_stage == "active"


@pytest.mark.cairn_only
def test_allowed_origins_get_preflights_and_may_write(make_server, unique):
    server = make_server("sqlite", args=["--cors-allowed-origins", "https://notebooks.corp.example,https://*.tools.example"])
    api = server.url + "/api/2.0/mlflow/"
    pre = requests.options(
        api + "experiments/create",
        headers={
            "Origin": "https://notebooks.corp.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )
    assert pre.status_code in (200, 204), pre.text
    assert pre.headers["Access-Control-Allow-Origin"] == "https://notebooks.corp.example"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "content-type" in pre.headers["Access-Control-Allow-Headers"].lower()
    for origin in ("https://notebooks.corp.example", "https://a.tools.example"):
        r = requests.post(api + "experiments/create", json={"name": f"cors-{unique}-{origin[8:12]}"}, headers={"Origin": origin}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["Access-Control-Allow-Origin"] == origin
    r = requests.post(api + "experiments/create", json={"name": f"cors-{unique}-x"}, headers={"Origin": EVIL}, timeout=30)
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers
    # Without allowed origins, a foreign preflight is refused outright.
    plain = make_server("sqlite")
    pre = requests.options(
        plain.url + "/api/2.0/mlflow/experiments/create",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert pre.status_code == 403 and "Access-Control-Allow-Origin" not in pre.headers
