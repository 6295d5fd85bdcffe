"""Access control end to end (issue 13): a server run with `--auth basic`, driven by the real
`mlflow` client (MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN) and MLflow's own
`AuthServiceClient` (`mlflow.server.get_app_client("basic-auth")`).

Two users, alice and bob, and two experiments and a registered model: alice creates experiment A
and model M (so she manages them), bob creates experiment B. With the default permission READ,
each may read the other's things and change only their own, until grants say otherwise.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
from mlflow.server import get_app_client

from servers import Server, cairn_binary, cairn_cli

ADMIN, ADMIN_PASSWORD = "root", "root-password-1"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-1"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def secured(request, make_server, reference, tmp_path_factory):
    if reference:
        # MLflow's own auth app, with the same first admin and default permission.
        if request.param == "postgresql":
            pytest.skip("reference mode runs MLflow on SQLite only")
        work = tmp_path_factory.mktemp("mlflow-auth")
        config = work / "basic_auth.ini"
        config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{work}/basic_auth.db\n"
            f"admin_username = {ADMIN}\n"
            f"admin_password = {ADMIN_PASSWORD}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env = {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": uuid.uuid4().hex}
        return make_server("sqlite", env=env, mlflow_args=["--app-name", "basic-auth"])
    env = {"CAIRN_ADMIN_USERNAME": ADMIN, "CAIRN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    return make_server(request.param, env=env, args=["--auth", "basic"])


def sign_in(monkeypatch, user: str | None, password: str | None = None, token: str | None = None):
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    if user is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or PASSWORDS.get(user, ADMIN_PASSWORD))
    if token is not None:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)


def refused(call, code: str = "PERMISSION_DENIED"):
    with pytest.raises(MlflowException) as info:
        call()
    assert info.value.error_code == code, info.value
    return info.value


@pytest.fixture(scope="module")
def world(secured):
    """alice and bob with their experiments and alice's model; made once per backend."""
    mp = pytest.MonkeyPatch()
    try:
        sign_in(mp, ADMIN, ADMIN_PASSWORD)
        auth = get_app_client("basic-auth", tracking_uri=secured.url)
        for user, password in PASSWORDS.items():
            auth.create_user(user, password)
        client = MlflowClient(tracking_uri=secured.url)
        suffix = uuid.uuid4().hex[:8]
        sign_in(mp, "alice")
        a = client.create_experiment(f"A-{suffix}")
        run_a = client.create_run(a).info.run_id
        client.log_metric(run_a, "m", 1.0)
        model = f"M-{suffix}"
        client.create_registered_model(model)
        client.create_model_version(model, f"runs:/{run_a}/model", run_id=run_a)
        sign_in(mp, "bob")
        b = client.create_experiment(f"B-{suffix}")
        run_b = client.create_run(b).info.run_id
    finally:
        mp.undo()
    return {"url": secured.url, "a": a, "b": b, "run_a": run_a, "run_b": run_b, "model": model, "server": secured}


def test_requests_without_or_with_wrong_credentials_get_401(world, monkeypatch, reference):
    url = world["url"]
    r = requests.get(url + "/api/2.0/mlflow/experiments/search?max_results=5", timeout=30)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(url + "/api/2.0/mlflow/experiments/search", auth=("alice", "not-the-password"), timeout=30)
    assert r.status_code == 401
    assert requests.get(url + "/health", timeout=30).status_code == 200, "liveness stays public"
    # Cairn serves the web UI's files to anyone (its login page must load; its API calls then
    # get 401); MLflow's auth app puts its UI behind the browser's sign-in dialog instead.
    assert requests.get(url + "/", timeout=30).status_code == (401 if reference else 200)
    r = requests.get(url + "/ajax-api/2.0/mlflow/experiments/search", timeout=30)
    assert r.status_code == 401
    sign_in(monkeypatch, "bob", "wrong-password")
    refused(lambda: MlflowClient(tracking_uri=url).search_experiments(), "UNAUTHENTICATED")


def test_each_user_does_exactly_what_their_permission_allows(world, monkeypatch):
    client = MlflowClient(tracking_uri=world["url"])
    a, b, run_a, run_b = world["a"], world["b"], world["run_a"], world["run_b"]
    # Default READ: bob reads alice's experiment and run, and changes nothing in it.
    sign_in(monkeypatch, "bob")
    assert client.get_experiment(a).experiment_id == a
    assert client.get_run(run_a).data.metrics["m"] == 1.0
    refused(lambda: client.log_metric(run_a, "m", 2.0))
    refused(lambda: client.create_run(a))
    refused(lambda: client.set_experiment_tag(a, "k", "v"))
    refused(lambda: client.delete_run(run_a))
    refused(lambda: client.delete_experiment(a))
    client.log_metric(run_b, "mine", 1.0)
    # Registry: bob may read alice's model, not change it or its aliases.
    model = world["model"]
    assert client.get_registered_model(model).name == model
    refused(lambda: client.set_registered_model_alias(model, "champion", "1"))
    refused(lambda: client.update_registered_model(model, description="x"))
    refused(lambda: client.delete_registered_model(model))
    sign_in(monkeypatch, "alice")
    client.set_registered_model_alias(model, "champion", "1")
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    refused(lambda: client.log_metric(run_b, "m", 1.0))
    # alice manages A, so she may let bob edit it; EDIT lets him log, not delete.
    auth = get_app_client("basic-auth", tracking_uri=world["url"])
    auth.grant_user_permission("bob", "experiment", a, "EDIT")
    sign_in(monkeypatch, "bob")
    client.log_metric(run_a, "from-bob", 3.0)
    refused(lambda: client.delete_run(run_a))
    refused(lambda: get_app_client("basic-auth", tracking_uri=world["url"]).grant_user_permission("bob", "experiment", a, "MANAGE"))
    assert get_app_client("basic-auth", tracking_uri=world["url"]).get_user_permission("bob", "experiment", a).permission == "EDIT"
    sign_in(monkeypatch, "alice")
    auth.revoke_user_permission("bob", "experiment", a)


def test_deny_hides_experiments_models_and_artifacts(world, monkeypatch):
    client = MlflowClient(tracking_uri=world["url"])
    a, run_a, model = world["a"], world["run_a"], world["model"]
    sign_in(monkeypatch, "alice")
    client.log_text(run_a, "secret", "notes.txt")
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    auth = get_app_client("basic-auth", tracking_uri=world["url"])
    auth.grant_user_permission("bob", "experiment", a, "DENY")
    auth.grant_user_permission("bob", "registered_model", model, "DENY")
    try:
        sign_in(monkeypatch, "bob")
        ids = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        assert a not in ids and world["b"] in ids
        assert model not in [m.name for m in client.search_registered_models(max_results=1000)]
        assert all(v.name != model for v in client.search_model_versions(max_results=1000))
        assert client.search_runs([a]) == []
        refused(lambda: client.get_run(run_a))
        refused(lambda: client.get_registered_model(model))
        r = requests.get(
            world["url"] + f"/api/2.0/mlflow-artifacts/artifacts/{a}/{run_a}/artifacts/notes.txt",
            auth=("bob", PASSWORDS["bob"]),
            timeout=30,
        )
        assert r.status_code == 403, r.text
        r = requests.get(
            world["url"] + f"/api/2.0/mlflow-artifacts/artifacts/{a}/{run_a}/artifacts/notes.txt",
            auth=("alice", PASSWORDS["alice"]),
            timeout=30,
        )
        assert r.status_code == 200 and r.text == "secret"
    finally:
        sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
        auth.revoke_user_permission("bob", "experiment", a)
        auth.revoke_user_permission("bob", "registered_model", model)


def test_search_pages_stay_correct_after_filtering(world, monkeypatch):
    client = MlflowClient(tracking_uri=world["url"])
    sign_in(monkeypatch, "alice")
    mine = {client.create_experiment(f"page-{uuid.uuid4().hex[:8]}") for _ in range(5)}
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    auth = get_app_client("basic-auth", tracking_uri=world["url"])
    hidden = sorted(mine)[:2]
    for exp in hidden:
        auth.grant_user_permission("bob", "experiment", exp, "DENY")
    sign_in(monkeypatch, "bob")
    seen, token = [], None
    while True:
        page = client.search_experiments(max_results=2, page_token=token)
        seen += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    assert len(seen) == len(set(seen)), "no experiment twice"
    assert not set(hidden) & set(seen)
    assert set(mine) - set(hidden) <= set(seen), "nothing readable skipped"


@pytest.mark.cairn_only
def test_admin_routes_and_the_audit_log_name_the_real_user(world, monkeypatch):
    url = world["url"]
    r = requests.get(url + "/api/cairn/v1/audit/events?limit=10000", auth=("bob", PASSWORDS["bob"]), timeout=30)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED"
    r = requests.post(url + "/api/cairn/v1/audit/verify", auth=("bob", PASSWORDS["bob"]), timeout=60)
    assert r.status_code == 403
    r = requests.get(url + "/api/cairn/v1/audit/events?limit=10000", auth=(ADMIN, ADMIN_PASSWORD), timeout=30)
    assert r.status_code == 200
    events = r.json()["events"]
    created_a = [e for e in events if e["entity_type"] == "experiment" and e["entity_id"] == world["a"]]
    assert created_a and created_a[0]["actor"] == "alice", created_a
    assert any(e["actor"] == "bob" and e["entity_type"] == "experiment" and e["entity_id"] == world["b"] for e in events)
    # A claimed name in the basic header of a signed-in user changes nothing: the password decides.
    sign_in(monkeypatch, "bob")
    MlflowClient(tracking_uri=url).set_tag(world["run_b"], "who", "bob")
    r = requests.get(url + "/api/cairn/v1/audit/events?limit=10000", auth=(ADMIN, ADMIN_PASSWORD), timeout=30)
    assert r.json()["events"][-1]["actor"] == "bob"
    # The admin-only user routes refuse others.
    refused(lambda: get_app_client("basic-auth", tracking_uri=url).create_user("mallory", "mallory-pass-1"))
    refused(lambda: get_app_client("basic-auth", tracking_uri=url).get_user("alice"))
    assert get_app_client("basic-auth", tracking_uri=url).get_user("bob").username == "bob"


def test_cross_origin_posts_are_still_refused(world):
    r = requests.post(
        world["url"] + "/api/2.0/mlflow/runs/delete",
        data='{"run_id": "%s"}' % world["run_b"],
        headers={"Origin": "https://evil.example", "Content-Type": "text/plain"},
        auth=("bob", PASSWORDS["bob"]),
        timeout=30,
    )
    assert r.status_code == 403 and "Cross-origin" in r.text


def token(server, *args: str) -> str:
    out = cairn_cli("tokens", "create", "--backend-store-uri", server.backend_uri, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.cairn_only
def test_tokens_of_each_scope(world, monkeypatch):
    server, client = world["server"], MlflowClient(tracking_uri=world["url"])
    read = token(server, "--user", "bob", "--scope", "read")
    write = token(server, "--user", "bob", "--scope", "write")
    serving = token(server, "--user", "bob", "--scope", "predictions:churn-api")
    sign_in(monkeypatch, None, token=read)
    assert client.get_run(world["run_b"]).info.run_id == world["run_b"]
    refused(lambda: client.log_metric(world["run_b"], "m", 1.0))
    sign_in(monkeypatch, None, token=write)
    client.log_metric(world["run_b"], "via-token", 1.0)
    # A token acts within its user's permissions.
    refused(lambda: client.log_metric(world["run_a"], "m", 1.0))
    sign_in(monkeypatch, None, token=serving)
    refused(lambda: client.get_run(world["run_b"]))
    body = {"predictions": [{"prediction_id": "p1", "deployment": "other-api", "input_digest": "sha256:" + "0" * 64}]}
    r = requests.post(world["url"] + "/api/cairn/v1/predictions", json=body, headers={"Authorization": f"Bearer {serving}"}, timeout=30)
    assert r.status_code == 403, r.text
    body["predictions"][0]["deployment"] = "churn-api"
    r = requests.post(world["url"] + "/api/cairn/v1/predictions", json=body, headers={"Authorization": f"Bearer {serving}"}, timeout=30)
    assert r.status_code != 403 and r.status_code != 401, r.text
    # Listed with last use, then revoked.
    listing = cairn_cli("tokens", "list", "--backend-store-uri", server.backend_uri)
    assert listing.returncode == 0 and read.split(".")[0] in listing.stdout
    out = cairn_cli("tokens", "revoke", write.split(".")[0], "--backend-store-uri", server.backend_uri)
    assert out.returncode == 0, out.stderr
    time.sleep(2.5)
    sign_in(monkeypatch, None, token=write)
    refused(lambda: client.get_run(world["run_b"]), "UNAUTHENTICATED")


@pytest.mark.cairn_only
def test_expired_tokens_are_refused(world, monkeypatch):
    short = token(world["server"], "--user", "bob", "--scope", "read", "--expires", "1s")
    time.sleep(1.5)
    r = requests.get(world["url"] + "/api/2.0/mlflow/experiments/search", headers={"Authorization": f"Bearer {short}"}, timeout=30)
    assert r.status_code == 401 and "expired" in r.json()["message"]


@pytest.mark.cairn_only
def test_wrong_passwords_are_rate_limited(world):
    url = world["url"] + "/api/2.0/mlflow/experiments/search"
    name = f"victim{uuid.uuid4().hex[:6]}"
    statuses = [requests.get(url, auth=(name, "wrong-password"), timeout=30).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[-1] == 429, statuses
    r = requests.get(url, auth=(name, "wrong-password"), timeout=30)
    assert "Retry-After" in r.headers


def test_users_change_their_own_password_with_the_current_one(world, monkeypatch):
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    admin = get_app_client("basic-auth", tracking_uri=world["url"])
    admin.create_user("carol", "carol-password-1")
    sign_in(monkeypatch, "carol", "carol-password-1")
    carol = get_app_client("basic-auth", tracking_uri=world["url"])
    refused(lambda: carol.update_user_password("carol", "carol-password-2"), "INVALID_PARAMETER_VALUE")
    refused(lambda: carol.update_user_password("carol", "carol-password-2", current_password="nope-nope"), "INVALID_PARAMETER_VALUE")
    carol.update_user_password("carol", "carol-password-2", current_password="carol-password-1")
    r = requests.get(world["url"] + "/api/2.0/mlflow/users/current", auth=("carol", "carol-password-1"), timeout=30)
    assert r.status_code == 401, "the old password stops working at once"
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    admin.update_user_admin("carol", True)
    assert admin.get_user("carol").is_admin
    admin.delete_user("carol")
    refused(lambda: admin.get_user("carol"), "RESOURCE_DOES_NOT_EXIST")
    refused(lambda: admin.delete_user(ADMIN), "BAD_REQUEST")


def test_roles_through_the_auth_client(world, monkeypatch):
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    auth = get_app_client("basic-auth", tracking_uri=world["url"])
    role = auth.create_role("default", f"editors-{uuid.uuid4().hex[:6]}", "can edit B")
    perm = auth.add_role_permission(role.id, "experiment", world["b"], "READ")
    assert [p.permission for p in auth.list_role_permissions(role.id)] == ["READ"]
    assert auth.update_role_permission(perm.id, "EDIT").permission == "EDIT"
    assert auth.assign_role("alice", role.id).role_id == role.id
    assert role.id in [r.id for r in auth.list_user_roles("alice")]
    assert [a.role_id for a in auth.list_role_users(role.id)] == [role.id]
    assert role.id in [r.id for r in auth.list_roles("default")] and auth.list_all_roles()
    assert auth.update_role(role.id, description="changed").description == "changed"
    assert auth.get_role(role.id).permissions[0].permission == "EDIT"
    sign_in(monkeypatch, "alice")
    MlflowClient(tracking_uri=world["url"]).log_metric(world["run_b"], "via-role", 1.0)
    refused(lambda: get_app_client("basic-auth", tracking_uri=world["url"]).create_role("default", "x"))
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    auth.unassign_role("alice", role.id)
    auth.remove_role_permission(perm.id)
    auth.delete_role(role.id)
    refused(lambda: auth.get_role(role.id), "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.cairn_only
def test_a_non_loopback_bind_without_auth_is_refused(tmp_path):
    out = subprocess.run(
        [str(cairn_binary()), "server", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode != 0
    assert "refusing to listen on 0.0.0.0 without authentication" in out.stderr
    assert not (tmp_path / "cairn.db").exists(), "refused before touching anything"


def test_registry_and_run_searches_page_correctly_after_filtering(world, monkeypatch):
    client = MlflowClient(tracking_uri=world["url"])
    suffix = uuid.uuid4().hex[:8]
    sign_in(monkeypatch, "alice")
    models = [client.create_registered_model(f"paged-{suffix}-{i}").name for i in range(5)]
    for name in models:
        client.create_model_version(name, f"runs:/{world['run_a']}/model", run_id=world["run_a"])
    exps = [client.create_experiment(f"runs-paged-{suffix}-{i}") for i in range(3)]
    runs = {e: [client.create_run(e).info.run_id for _ in range(3)] for e in exps}
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    auth = get_app_client("basic-auth", tracking_uri=world["url"])
    hidden_models, hidden_exp = models[1:3], exps[1]
    for name in hidden_models:
        auth.grant_user_permission("bob", "registered_model", name, "DENY")
    auth.grant_user_permission("bob", "experiment", hidden_exp, "DENY")
    sign_in(monkeypatch, "bob")

    def every_page(search):
        seen, token = [], None
        while True:
            page = search(token)
            seen += list(page)
            token = page.token
            if not token:
                return seen

    pattern = f"name LIKE 'paged-{suffix}-%'"
    found = [m.name for m in every_page(lambda t: client.search_registered_models(pattern, max_results=2, page_token=t))]
    assert sorted(found) == sorted(set(models) - set(hidden_models)), found
    versions = every_page(lambda t: client.search_model_versions(pattern, max_results=2, page_token=t))
    assert sorted(v.name for v in versions) == sorted(set(models) - set(hidden_models))
    found_runs = [r.info.run_id for r in every_page(lambda t: client.search_runs(exps, max_results=2, page_token=t))]
    assert len(found_runs) == len(set(found_runs)), "no run twice"
    assert set(found_runs) == set(runs[exps[0]] + runs[exps[2]]), "every readable run, none of the hidden experiment"


def lineage_get(url: str, user: str, path: str) -> requests.Response:
    password = PASSWORDS.get(user, ADMIN_PASSWORD)
    return requests.get(url + "/api/cairn/v1" + path, auth=(user, password), timeout=60)


@pytest.mark.cairn_only
def test_lineage_answers_show_placeholders_to_a_reader(world, monkeypatch):
    # A chain of its own: a model version another test made from the same run would rightly
    # show bob the run id it names (as the registry does), so nothing else may point at it.
    url, suffix = world["url"], uuid.uuid4().hex[:8]
    alice = ("alice", PASSWORDS["alice"])
    sign_in(monkeypatch, "alice")
    client = MlflowClient(tracking_uri=url)
    exp = client.create_experiment(f"lineage-{suffix}")
    run_a = client.create_run(exp).info.run_id
    client.log_param(run_a, "secret_param", f"value-{suffix}")
    model = f"LM-{suffix}"
    client.create_registered_model(model)
    client.create_model_version(model, f"runs:/{run_a}/model", run_id=run_a)
    v1 = url + "/api/cairn/v1"
    dataset = f"dataset:shared-{suffix}@1"
    steps = [
        ("put", f"/lineage/nodes/dataset/shared-{suffix}@1", {"digest": "ab" * 32}),
        ("post", "/lineage/edges", {"source": f"run:{run_a}", "kind": "used", "target": dataset}),
        ("post", f"/deployments/serve-{suffix}", {"model_version": f"{model}/1"}),
        (
            "post",
            "/predictions",
            {"predictions": [{"prediction_id": f"p-{suffix}", "deployment": f"serve-{suffix}", "input_digest": "cd" * 32}]},
        ),
    ]
    for method, path, body in steps:
        r = getattr(requests, method)(v1 + path, json=body, auth=alice, timeout=60)
        assert r.status_code == 200, (path, r.text)
    paths = [
        f"/lineage/upstream?node=prediction:p-{suffix}",
        f"/lineage/downstream?node={dataset}",
        f"/lineage/nodes/run/{run_a}",
        f"/lineage/diff?left=prediction:p-{suffix}&right=deployment:serve-{suffix}",
        f"/lineage/export?node=prediction:p-{suffix}&format=json",
        f"/lineage/export?node=prediction:p-{suffix}&format=dot",
        f"/lineage/export?node=prediction:p-{suffix}&format=prov-json",
        f"/lineage/completeness?node={model}/1",
        f"/predictions/p-{suffix}/trace",
    ]
    # What alice sees of her run and model version: ids, names and digests bob must not see.
    mine = lineage_get(url, "alice", paths[4]).json()
    secrets = {run_a, model, f"value-{suffix}"}
    for node in mine["nodes"]:
        if node["id"].split(":")[0] in ("run", "model", "model-version"):
            secrets |= {node["label"], *(v for v in [node.get("digest")] if v)}
    assert any(n["id"] == f"model-version:{model}/1" for n in mine["nodes"]), mine
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    auth = get_app_client("basic-auth", tracking_uri=url)
    auth.grant_user_permission("bob", "experiment", exp, "DENY")
    auth.grant_user_permission("bob", "registered_model", model, "DENY")
    for path in paths:
        seen = lineage_get(url, "alice", path)
        assert seen.status_code == 200 and "redacted" not in seen.text, (path, seen.text)
        r = lineage_get(url, "bob", path)
        assert r.status_code == 200, (path, r.text)
        leaked = [s for s in secrets if s in r.text]
        assert not leaked, (path, leaked, r.json() if "dot" not in path else r.text)
        assert "redacted" in r.text, (path, r.text)
    trace = lineage_get(url, "bob", paths[8]).json()
    placeholder = trace["prediction"]["model_version"]
    assert placeholder.startswith("redacted:")
    assert {"id": placeholder, "kind": "model-version", "redacted": True} in trace["lineage"]["nodes"]
    assert dataset in {n["id"] for n in trace["lineage"]["nodes"]}, "what bob may read stays"
    assert lineage_get(url, "bob", "/lineage/health").status_code == 200


@pytest.mark.cairn_only
def test_a_predictions_token_serves_its_own_deployment_only(world):
    url, server = world["url"], world["server"]
    suffix = uuid.uuid4().hex[:8]
    r = requests.post(
        url + f"/api/cairn/v1/deployments/api-{suffix}",
        json={"model_version": f"{world['model']}/1"},
        auth=("alice", PASSWORDS["alice"]),
        timeout=60,
    )
    assert r.status_code == 200, r.text
    serving = token(server, "--user", "bob", "--scope", f"predictions:api-{suffix}")
    read = token(server, "--user", "bob", "--scope", "read")

    def post(bearer: str, *deployments: str) -> requests.Response:
        items = [
            {"prediction_id": f"{d}-{uuid.uuid4().hex[:6]}", "deployment": d, "input_digest": "ef" * 32}
            for d in deployments
        ]
        return requests.post(
            url + "/api/cairn/v1/predictions",
            json={"predictions": items},
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=60,
        )

    assert post(serving, f"api-{suffix}").json()["accepted"] == 1
    assert post(serving, f"deployment:api-{suffix}").status_code == 200
    for refused_batch in [("other",), (f"api-{suffix}", "other")]:
        r = post(serving, *refused_batch)
        assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    assert post(read, f"api-{suffix}").status_code == 403, "a read token posts nothing"
    r = requests.post(
        url + f"/api/cairn/v1/deployments/api-{suffix}",
        json={"model_version": f"{world['model']}/1"},
        headers={"Authorization": f"Bearer {serving}"},
        timeout=60,
    )
    assert r.status_code == 403, "nor may the serving token move its deployment"


def test_grants_follow_a_renamed_model(world, monkeypatch):
    client = MlflowClient(tracking_uri=world["url"])
    name = f"renamed-{uuid.uuid4().hex[:8]}"
    sign_in(monkeypatch, "alice")
    client.create_registered_model(name)
    auth = get_app_client("basic-auth", tracking_uri=world["url"])
    auth.grant_user_permission("bob", "registered_model", name, "EDIT")
    client.rename_registered_model(name, name + "-2")
    sign_in(monkeypatch, "bob")
    client.update_registered_model(name + "-2", description="bob may still edit it")
    assert client.get_registered_model(name + "-2").description == "bob may still edit it"
    sign_in(monkeypatch, "alice")
    # alice's MANAGE as its creator moved too: she may delete it under its new name.
    client.delete_registered_model(name + "-2")
    sign_in(monkeypatch, ADMIN, ADMIN_PASSWORD)
    client.create_registered_model(name)
    sign_in(monkeypatch, "bob")
    refused(lambda: client.update_registered_model(name, description="x"))


@pytest.mark.cairn_only
def test_the_audit_log_shows_the_signed_in_user_beside_the_claimed_name(world, monkeypatch):
    sign_in(monkeypatch, "bob")
    client = MlflowClient(tracking_uri=world["url"])
    run = client.create_run(world["b"], tags={"mlflow.user": "somebody-else"}).info.run_id
    out = cairn_cli("audit", "log", "--json", "--limit", "100000", "--backend-store-uri", world["server"].backend_uri)
    assert out.returncode == 0, out.stderr
    import json

    events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    created = [e for e in events if e.get("entity_id") == run or run in json.dumps(e)]
    assert created and created[0]["actor"] == "bob", created
    assert created[0].get("claimed") == "somebody-else", created[0]


@pytest.mark.cairn_only
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_changes_on_one_server_reach_another_within_the_reload_bound(backend, make_server, tmp_path):
    """Two servers on one database: a password change, a new veto and a token revocation made
    through the first are honoured by the second within `RELOAD_AFTER` (2 s) plus slack for a
    loaded machine, even though the second has just verified and cached the old credentials."""
    env = {"CAIRN_ADMIN_USERNAME": ADMIN, "CAIRN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    first = make_server(backend, env=env, args=["--auth", "basic"])
    second = Server(
        kind="cairn",
        backend=backend,
        backend_uri=first.backend_uri,
        workdir=tmp_path,
        env=env,
        args=["--auth", "basic"],
    )
    second.start()
    try:
        admin = (ADMIN, ADMIN_PASSWORD)
        r = requests.post(first.url + "/api/2.0/mlflow/users/create", json={"username": "dora", "password": "dora-password-1"}, auth=admin, timeout=60)
        assert r.status_code == 200, r.text
        r = requests.post(first.url + "/api/2.0/mlflow/experiments/create", json={"name": "dora-sees"}, auth=admin, timeout=60)
        exp = r.json()["experiment_id"]
        dora_token = token(first, "--user", "dora", "--scope", "read")
        search = "/api/2.0/mlflow/experiments/search"
        get_exp = f"/api/2.0/mlflow/experiments/get?experiment_id={exp}"

        def status(path: str, **kw) -> int:
            return requests.get(second.url + path, timeout=60, **kw).status_code

        # The second server verifies and remembers all three before the changes.
        assert status(search, auth=("dora", "dora-password-1")) == 200
        assert status(get_exp, auth=("dora", "dora-password-1")) == 200
        assert status(search, headers={"Authorization": f"Bearer {dora_token}"}) == 200

        def until(since: float, check, what: str) -> float:
            """Seconds from `since` (just before the change) until `check` holds."""
            while time.monotonic() - since < 10:
                if check():
                    return time.monotonic() - since
                time.sleep(0.05)
            raise AssertionError(f"{what} did not reach the second server in 10 s")

        start = time.monotonic()
        r = requests.patch(
            first.url + "/api/2.0/mlflow/users/update-password",
            json={"username": "dora", "password": "dora-password-2"},
            auth=admin,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        took = until(start, lambda: status(search, auth=("dora", "dora-password-1")) == 401, "the password change")
        assert status(search, auth=("dora", "dora-password-2")) == 200
        start = time.monotonic()
        r = requests.post(
            first.url + "/api/2.0/mlflow/users/permissions/grant",
            json={"username": "dora", "resource_type": "experiment", "resource_id": exp, "permission": "DENY"},
            auth=admin,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        took_deny = until(start, lambda: status(get_exp, auth=("dora", "dora-password-2")) == 403, "the veto")
        out = cairn_cli("tokens", "revoke", dora_token.split(".")[0], "--backend-store-uri", first.backend_uri)
        assert out.returncode == 0, out.stderr
        start = time.monotonic()  # committed when the command returns
        took_revoke = until(start, lambda: status(search, headers={"Authorization": f"Bearer {dora_token}"}) == 401, "the revocation")
        print(f"reached the second server after: password {took:.2f} s, veto {took_deny:.2f} s, revocation {took_revoke:.2f} s")
        for t in (took, took_deny, took_revoke):
            assert t <= 2.0 + 1.5, f"{t:.2f} s is past the 2 s bound (1.5 s slack for a loaded machine)"
    finally:
        second.stop()
