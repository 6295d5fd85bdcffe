"""Forged audit lines: a claimed user name cannot split a line of `cairn audit log` or act under
the server's own names.

Before this change, a basic-auth user name holding a tab and a newline was stored as the actor
and printed raw, so one event printed as two.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from servers import cairn_cli

pytestmark = pytest.mark.cairn_only


def create_experiment(server, user: str) -> requests.Response:
    return requests.post(
        server.url + "/api/2.0/mlflow/experiments/create",
        json={"name": f"actor-{uuid.uuid4().hex[:8]}"},
        auth=(user, "password"),
        timeout=30,
    )


@pytest.mark.parametrize(
    "user",
    ["mallory\n99\t1\tforged", "tab\there", "esc\x1b[2Jcleared", "cairn", "cairn-gc", "anonymous"],
)
def test_forged_or_reserved_names_are_refused_and_store_nothing(tracking, user):
    before = requests.post(tracking.url + "/api/2.0/mlflow/experiments/search", json={"max_results": 1000}, timeout=30)
    r = create_experiment(tracking, user)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "control characters" in r.json()["message"] or "reserved" in r.json()["message"]
    after = requests.post(tracking.url + "/api/2.0/mlflow/experiments/search", json={"max_results": 1000}, timeout=30)
    assert len(after.json()["experiments"]) == len(before.json()["experiments"])


def test_an_ordinary_name_is_the_actor_and_each_event_is_one_line(make_server):
    server = make_server("sqlite")
    assert create_experiment(server, "zoe.ng@corp.example").status_code == 200
    server.stop()
    out = cairn_cli("audit", "log", "--backend-store-uri", f"sqlite:///{server.sqlite_path}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("\tzoe.ng@corp.example\t" in line for line in lines), out.stdout
    assert all(line.count("\t") == 5 for line in lines), out.stdout
