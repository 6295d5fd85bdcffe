"""The UI on a server with `--auth basic`: the sign-in page (wrong and right password, an API
token), the signed-in indicator and sign-out, controls hidden from a user who may only read, and
a refusal (403) shown as one. The data is made over the REST API as the admin."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from servers import Server, cairn_cli  # noqa: E402

ADMIN, ADMIN_PASSWORD = "admin", "admin-ui-password"
READER, READER_PASSWORD = "reader", "reader-ui-password"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("cairn-ui-auth")
    server = Server(
        kind="cairn",
        backend="sqlite",
        backend_uri=f"sqlite:///{workdir / 'store.db'}",
        workdir=workdir,
        env={"CAIRN_ADMIN_USERNAME": ADMIN, "CAIRN_ADMIN_PASSWORD": ADMIN_PASSWORD},
        args=["--auth", "basic"],
    )
    server.start()
    yield server
    server.stop()


def api(server: Server, path: str, body: dict, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> dict:
    r = requests.post(f"{server.url}/api/2.0/mlflow/{path}", json=body, auth=(user, password), timeout=30)
    assert r.ok, (path, r.status_code, r.text)
    return r.json()


@pytest.fixture(scope="module")
def world(secured: Server) -> dict:
    """An admin's experiment with a tagged run, and a secret experiment the reader is denied."""
    api(secured, "users/create", {"username": READER, "password": READER_PASSWORD})
    shared = api(secured, "experiments/create", {"name": "shared-results"})["experiment_id"]
    run = api(secured, "runs/create", {"experiment_id": shared, "run_name": "baseline", "start_time": 1})["run"]["info"]["run_id"]
    api(secured, "runs/set-tag", {"run_id": run, "key": "owner", "value": "admin"})
    api(secured, "runs/log-metric", {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0})
    secret = api(secured, "experiments/create", {"name": "secret-project"})["experiment_id"]
    api(secured, "users/permissions/grant", {"username": READER, "resource_type": "experiment", "resource_id": secret, "permission": "DENY"})
    return {"shared": shared, "run": run, "secret": secret}


@pytest.fixture
def page(browser, secured: Server):
    """The shared browser pointed at the secured server, signed out (its own origin, so its own
    sessionStorage)."""
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


def test_a_wrong_password_is_refused_and_the_right_one_signs_in(page, world):
    # Nothing but the sign-in page is shown, and the browser raised no dialog of its own (an
    # open dialog would block the script below).
    assert page.find_all("table.experiments") == []
    assert page.find("h1").text == "Sign in to Cairn"
    page.expect_console_error(r"401")
    sign_in(page, READER, "not-the-password")
    alert = page.wait(".login-form [role=alert]")
    assert "Wrong user name or password" in alert.text, alert.text
    assert page.find("input[name=password]").get_attribute("value") == ""
    page.shot("login-refused")
    page.find("input[name=username]").clear()
    sign_in(page, READER, READER_PASSWORD)
    page.wait_mark("experiments")
    page.wait_text(".account", f"Signed in as {READER}")
    page.wait_text("table.experiments", "shared-results")
    # The experiment the reader is denied is not listed at all (the server filters the search).
    assert "secret-project" not in page.find("table.experiments").text
    # A reload keeps the session (this tab's sessionStorage).
    page.driver.refresh()
    page.wait_mark("experiments")
    page.wait_text(".account", READER)


def test_a_reader_sees_no_controls_for_what_the_server_would_refuse(page, world):
    sign_in(page, READER, READER_PASSWORD)
    page.wait_mark("experiments")
    row = page.wait_until(
        lambda: next((r for r in page.find_all("table.experiments tbody tr") if "shared-results" in r.text and "read-only" in r.text), None),
        "the shared experiment marked read-only",
    )
    assert row.find_elements(By.CSS_SELECTOR, "button") == [], row.text
    page.shot("auth-reader-experiments")
    # The runs table: selecting a run offers compare and charts, never delete.
    page.go(f"/experiments/{world['shared']}")
    page.wait_mark("runs")
    page.wait(f".grid-row[data-run-id='{world['run']}'] input[type=checkbox]").click()
    page.wait_until(lambda: "sel=" in page.hash, "selection in the address")
    page.wait_until(lambda: any("1 selected" in t.text for t in page.find_all(".toolbar")), "one run selected")
    assert not [b for b in page.find_all("button") if "Delete" in b.text or "Restore" in b.text]
    # The run page: tags listed, no edit, add or delete, no delete of the run.
    page.go(f"/experiments/{world['shared']}/runs/{world['run']}")
    page.wait_mark("run")
    page.wait_until(lambda: "owner" in page.find("#tags").find_element(By.XPATH, "..").text, "the tags listed")
    buttons = [b.text for b in page.find_all("button")]
    assert not [t for t in buttons if t in ("Edit", "Delete", "Add tag", "Delete run")], buttons
    assert page.find_all(".tag-add") == []
    page.shot("auth-reader-run")


def test_a_refused_view_says_permission_denied(page, world):
    sign_in(page, READER, READER_PASSWORD)
    page.wait_mark("experiments")
    page.expect_console_error(r"403")
    page.go(f"/experiments/{world['secret']}")
    alert = page.wait(".error-box.denied")
    assert "Permission denied" in alert.text and "PERMISSION_DENIED" in alert.text, alert.text
    # Retrying would not help, so none is offered; the page is not a blank or a "not found".
    assert alert.find_elements(By.CSS_SELECTOR, "button") == []
    assert page.find_all(".not-found") == []
    page.shot("auth-denied")


def test_the_admin_sees_every_control_and_signs_out(page, world):
    sign_in(page, ADMIN, ADMIN_PASSWORD)
    page.wait_mark("experiments")
    page.wait_text(".account", "admin")
    page.wait_until(lambda: page.find_all("button[aria-label='Rename secret-project']"), "rename offered")
    assert page.find_all("button[aria-label='Delete shared-results']")
    page.go(f"/experiments/{world['shared']}/runs/{world['run']}")
    page.wait_mark("run")
    page.wait_until(lambda: page.find_all("button[aria-label='Edit tag owner']"), "tag editing offered")
    assert page.find_all(".tag-add")
    assert [b for b in page.find_all("button") if b.text == "Delete run"]
    page.shot("auth-admin-run")
    [b for b in page.find_all(".account button") if b.text == "Sign out"][0].click()
    page.wait(".login-form")
    assert page.js("return sessionStorage.length") == 0


def test_a_read_token_signs_in_and_may_create_nothing(page, world, secured):
    out = cairn_cli("tokens", "create", "--backend-store-uri", secured.backend_uri, "--user", ADMIN, "--scope", "read")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    [t for t in page.find_all(".login [role=tab]") if t.text == "API token"][0].click()
    page.wait("input[name=token]").send_keys(token)
    page.find(".login-form button[type=submit]").click()
    page.wait_mark("experiments")
    page.wait_text(".account", "read token")
    # An admin's read token: the rows load, and neither creating nor changing is offered.
    page.wait_until(lambda: "read-only" in page.find("table.experiments").text, "rows marked read-only")
    assert page.find_all("input[placeholder=name]") == []
    assert page.find_all("table.experiments button") == []
    page.shot("auth-read-token")
