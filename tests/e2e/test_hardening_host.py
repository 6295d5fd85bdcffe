"""DNS rebinding: a page whose name is rebound to 127.0.0.1 must not read the server.

Such a page reaches the server under the attacker's *name*, so any `Host` the server does not
answer to is refused with 403 (as MLflow answers). Liveness routes stay open to load balancers.

Before this change, `curl -H 'Host: attacker.example' $B/api/2.0/mlflow/experiments/search`
returned the experiments.
"""

from __future__ import annotations

import pytest
import requests


def get(url: str, host: str, **kwargs) -> requests.Response:
    return requests.get(url, headers={"Host": host}, timeout=30, **kwargs)


def test_a_foreign_host_is_refused_and_loopback_names_are_served(tracking, experiment_id):
    api = tracking.url + "/api/2.0/mlflow/"
    for host in ("attacker.example", f"attacker.example:{tracking.port}", f"localhost.attacker.example:{tracking.port}"):
        r = get(api + "experiments/get", host, params={"experiment_id": experiment_id})
        assert r.status_code == 403, (host, r.status_code, r.text)
        assert "Invalid Host header" in r.text
        assert experiment_id not in r.text
        r = requests.post(api + "experiments/search", json={"max_results": 10}, headers={"Host": host}, timeout=30)
        assert r.status_code == 403, r.text
    for host in (f"localhost:{tracking.port}", f"127.0.0.1:{tracking.port}", "localhost"):
        r = get(api + "experiments/get", host, params={"experiment_id": experiment_id})
        assert r.status_code == 200, (host, r.text)


def test_liveness_routes_answer_any_host(tracking):
    assert get(tracking.url + "/health", "attacker.example").status_code == 200


@pytest.mark.cairn_only
def test_the_refusal_is_mlflow_json(tracking):
    r = get(tracking.url + "/api/2.0/mlflow/experiments/search", "attacker.example")
    assert r.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": "Invalid Host header - possible DNS rebinding attack detected",
    }


@pytest.mark.cairn_only
def test_allowed_hosts_replace_the_defaults(make_server):
    server = make_server("sqlite", args=["--allowed-hosts", "ml.corp.example,*.cairn.example"])
    api = server.url + "/api/2.0/mlflow/experiments/search"
    assert get(api, "ml.corp.example").status_code == 200
    assert get(api, f"replica-2.cairn.example:{server.port}").status_code == 200
    assert get(api, f"localhost:{server.port}").status_code == 403
    assert get(api, "evil.example").status_code == 403
