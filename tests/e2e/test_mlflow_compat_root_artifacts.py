"""Uploads anywhere under the artifact root (issue 12, group 3). MLflow's proxied artifact API
accepts any path below `mlflow-artifacts:/`, not only a run's or logged model's folder; so does
Cairn, keeping such files content-addressed and audited, listing, downloading and deleting them
like any other, and keeping their blobs through garbage collection until they are deleted."""

from __future__ import annotations

import hashlib

import pytest
import requests

from servers import cairn_cli

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def put(tracking, path: str, data: bytes) -> requests.Response:
    return requests.put(f"{tracking.url}{ARTIFACTS}/{path}", data=data, timeout=60)


def test_files_outside_any_run_are_stored_listed_and_deleted(tracking, unique: str):
    base = f"loose-{unique}"
    assert put(tracking, f"{base}/dir/a.txt", b"alpha").status_code == 200
    assert put(tracking, f"{base}/dir/sub/b.bin", b"beta").status_code == 200
    assert put(tracking, f"{base}/top.txt", b"top").status_code == 200

    got = requests.get(f"{tracking.url}{ARTIFACTS}/{base}/dir/a.txt", timeout=60)
    assert got.status_code == 200 and got.content == b"alpha"
    assert got.headers["Content-Type"].split(";")[0] == "text/plain"

    listed = requests.get(f"{tracking.url}{ARTIFACTS}", params={"path": f"{base}/dir"}, timeout=60).json()
    entries = {(f["path"], f["is_dir"]) for f in listed["files"]}
    assert entries == {("a.txt", False), ("sub", True)}

    assert requests.delete(f"{tracking.url}{ARTIFACTS}/{base}/dir/a.txt", timeout=60).status_code == 200
    assert requests.get(f"{tracking.url}{ARTIFACTS}/{base}/dir/a.txt", timeout=60).status_code in (404, 500)
    remaining = requests.get(f"{tracking.url}{ARTIFACTS}", params={"path": f"{base}/dir"}, timeout=60).json()
    assert [(f["path"], f["is_dir"]) for f in remaining["files"]] == [("sub", True)]


@pytest.mark.cairn_only
def test_root_files_are_audited_and_survive_gc_until_deleted(tracking, unique: str):
    path = f"gc-root-{unique}/kept.bin"
    body = f"root bytes {unique}".encode()
    digest = hashlib.sha256(body).hexdigest()
    blob = tracking.workdir / "data" / "artifacts" / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest
    assert put(tracking, path, body).status_code == 200
    assert blob.is_file()

    events, after = [], 0
    while True:
        page = requests.get(
            f"{tracking.url}/api/cairn/v1/audit/events", params={"after": after, "limit": 1000}, timeout=60
        ).json()
        events += page["events"]
        if "next_after" not in page:
            break
        after = page["next_after"]
    mine = [e for e in events if e["entity_type"] == "artifact_root" and path in e["payload"]]
    assert [e["action"] for e in mine] == ["log_artifact"]

    def gc() -> None:
        store = ["--backend-store-uri", tracking.backend_uri, "--data-dir", str(tracking.workdir / "data")]
        result = cairn_cli("gc", "--older-than", "0s", "--grace", "0s", *store)
        assert result.returncode == 0, result.stderr

    gc()
    assert blob.is_file(), "a root file holds its blob"
    assert requests.get(f"{tracking.url}{ARTIFACTS}/{path}", timeout=60).content == body
    assert requests.delete(f"{tracking.url}{ARTIFACTS}/{path}", timeout=60).status_code == 200
    gc()
    assert not blob.exists(), "deleted, so collected"
    verify = requests.post(f"{tracking.url}/api/cairn/v1/audit/verify", timeout=60)
    assert verify.status_code == 200 and verify.json()["ok"] is True, verify.text
