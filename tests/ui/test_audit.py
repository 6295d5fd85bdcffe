"""The audit log view on a server of its own (the test tampers with its database): newest first
in pages, filters, payloads as text, and "verify the chain" before and after a row is edited."""

from __future__ import annotations

import sqlite3

import pytest
import requests
from mlflow.tracking import MlflowClient

from browser import Browser
from governance import XSS
from servers import REPO_ROOT, Server


@pytest.fixture(scope="module")
def audit_server(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("cairn-audit")
    server = Server(kind="cairn", backend="sqlite", backend_uri=f"sqlite:///{workdir / 'store.db'}", workdir=workdir)
    server.start()
    client = MlflowClient(tracking_uri=server.url)
    exp = client.create_experiment("audited")
    for i in range(60):
        client.create_run(exp, run_name=f"r{i}")
    run = client.create_run(exp, run_name="payload")
    client.set_tag(run.info.run_id, "note", XSS)
    # One change by a named actor (with --auth none the claimed basic-auth name is recorded).
    reply = requests.post(
        server.url + "/api/2.0/mlflow/experiments/create", json={"name": "by-alice"}, auth=("alice", "x"), timeout=30
    )
    reply.raise_for_status()
    server.db_path = workdir / "store.db"
    yield server
    server.stop()


@pytest.fixture
def audit(driver, audit_server, request) -> Browser:
    b = Browser(driver, audit_server.url, REPO_ROOT / ".test-work" / "screenshots")
    b.drain_console()
    yield b
    b.assert_no_alert()
    errors = [e for e in b.drain_console() if e["level"] == "SEVERE" and not b.expected_error(e["message"])]
    assert not errors, f"browser console errors in {request.node.name}: {errors}"


def seqs(b: Browser) -> list[int]:
    return [int(r.get_attribute("data-seq")) for r in b.find_all(".audit-table tbody tr[data-seq]")]


def test_events_page_newest_first_and_filter(audit, audit_server):
    audit.open("/audit")
    audit.wait_mark("audit")
    first = seqs(audit)
    assert len(first) == 50 and first == sorted(first, reverse=True)
    audit.shot("audit")
    audit.driver.find_element("xpath", "//button[text()='Older']").click()
    audit.wait_mark("audit", 2)
    older = seqs(audit)
    assert older and max(older) < min(first) and f"before={min(first)}" in audit.hash
    audit.open("/audit?actor=alice")
    audit.wait_mark("audit")
    rows = audit.find_all(".audit-table tbody tr[data-seq]")
    assert len(rows) == 1 and "create_experiment" in rows[0].text


def test_payloads_open_as_text(audit, audit_server):
    audit.open("/audit?action=log_batch")  # MLflow's set-tag is a one-tag batch
    audit.wait_mark("audit")
    audit.find(".audit-table button.linkish").click()
    payload = audit.wait_text(".payload", XSS)
    assert "note" in payload.text
    assert not audit.find_all(".audit-table img"), "a payload became an element"
    audit.shot("audit-payload")


def test_verify_passes_then_shows_the_first_bad_event_after_tampering(audit, audit_server):
    audit.open("/audit")
    audit.wait_mark("audit")
    audit.driver.find_element("xpath", "//button[text()='Verify the chain']").click()
    assert "The chain verifies" in audit.wait(".verify-result").text
    with sqlite3.connect(audit_server.db_path) as db:
        db.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5")
    audit.open("/audit")
    audit.wait_mark("audit")
    audit.driver.find_element("xpath", "//button[text()='Verify the chain']").click()
    result = audit.wait_text(".verify-result", "does not verify")
    assert "event 5" in result.find_element("css selector", ".first-bad").text
    audit.shot("audit-verify-tampered")
    before = audit.marks("audit")
    result.find_element("css selector", ".first-bad").click()
    audit.wait_mark("audit", before + 1)
    assert "open=5" in audit.hash
    row = audit.find('.audit-table tr[data-seq="5"]')
    assert "bad" in row.get_attribute("class") and "mallory" in row.text
