"""Changing things from the UI: an experiment created, renamed, deleted (after a confirmation
that can be declined) and restored; runs deleted and restored from the runs table. Each test
makes its own experiment, so the shared data the other tests read stays as it is."""

from __future__ import annotations

import time

from mlflow.tracking import MlflowClient
from selenium.webdriver.common.keys import Keys


def row_of(browser, name: str):
    """The experiments-list row whose name link is exactly `name`, or None. Found in one script
    call, so a re-render between finding rows and reading them cannot leave a stale handle."""
    return browser.js(
        "return [...document.querySelectorAll('table.experiments tbody tr')]"
        ".find(r => r.querySelector('td:first-child a')?.textContent === arguments[0]) ?? null",
        name,
    )


def answer_confirm(browser, accept: bool) -> str:
    alert = browser.wait_until(lambda: _alert(browser), "the confirmation")
    text = alert.text
    alert.accept() if accept else alert.dismiss()
    return text


def _alert(browser):
    try:
        return browser.driver.switch_to.alert
    except Exception:
        return None


def test_experiment_create_rename_delete_and_restore(browser, server):
    client = MlflowClient(tracking_uri=server.url)
    name = f"lifecycle-{time.time_ns()}"
    browser.open()
    browser.wait_mark("experiments")
    browser.find("input[placeholder=name]").send_keys(name)
    browser.find(".view-header button[type=submit]").click()
    # Creating opens the new experiment's (empty) runs table.
    browser.wait_text("#runs-title", name)
    browser.wait_mark("runs")
    exp_id = client.get_experiment_by_name(name).experiment_id
    assert f"/experiments/{exp_id}" in browser.hash

    browser.go("/experiments")
    browser.wait_until(lambda: row_of(browser, name), "the new experiment listed")
    browser.find(f"button[aria-label='Rename {name}']").click()
    box = browser.wait(f"#rename-{exp_id}")
    box.clear()
    box.send_keys(f"{name}-renamed", Keys.ENTER)
    browser.wait_until(lambda: row_of(browser, f"{name}-renamed"), "the renamed row")
    assert client.get_experiment(exp_id).name == f"{name}-renamed"
    name = f"{name}-renamed"

    # Declining the confirmation changes nothing.
    browser.find(f"button[aria-label='Delete {name}']").click()
    assert name in answer_confirm(browser, accept=False)
    assert row_of(browser, name) is not None
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    browser.find(f"button[aria-label='Delete {name}']").click()
    assert "can be restored" in answer_confirm(browser, accept=True)
    browser.wait_until(lambda: row_of(browser, name) is None, "the deleted row gone")
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"

    # Shown again with "Show deleted", marked, and restored.
    browser.find(".toolbar label.checkbox input").click()
    browser.wait_until(lambda: "deleted=1" in browser.hash, "show-deleted in the address")
    row = browser.wait_until(lambda: row_of(browser, name), "the deleted row listed")
    assert "deleted" in row.find_element("css selector", ".badge").text
    browser.shot("experiments-deleted-shown")
    browser.find(f"button[aria-label='Restore {name}']").click()
    browser.wait_until(lambda: browser.find_all(f"button[aria-label='Delete {name}']"), "restored row offers delete")
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_runs_are_deleted_and_restored_from_the_table(browser, server):
    client = MlflowClient(tracking_uri=server.url)
    exp = client.create_experiment(f"run-lifecycle-{time.time_ns()}")
    keep = client.create_run(exp, run_name="keep").info.run_id
    doomed = client.create_run(exp, run_name="doomed").info.run_id
    browser.open(f"/experiments/{exp}")
    browser.wait_mark("runs")
    browser.wait(f".grid-row[data-run-id='{doomed}'] input[type=checkbox]").click()
    browser.wait_until(lambda: doomed in browser.hash, "selection in the address")
    delete = next(b for b in browser.find_all("button") if b.text == "Delete selected")
    delete.click()
    assert "1 run(s)" in answer_confirm(browser, accept=True)
    browser.wait_until(lambda: not browser.find_all(f".grid-row[data-run-id='{doomed}']"), "the deleted run gone")
    assert browser.find_all(f".grid-row[data-run-id='{keep}']")
    assert client.get_run(doomed).info.lifecycle_stage == "deleted"

    show = next(l for l in browser.find_all(".toolbar label.checkbox") if "Show deleted runs" in l.text)
    show.click()
    row = browser.wait(f".grid-row[data-run-id='{doomed}'].deleted")
    assert "deleted" in row.text
    row.find_element("css selector", "input[type=checkbox]").click()
    browser.wait_until(lambda: doomed in browser.hash, "selection in the address")
    # Only the deleted run is selected, so only restoring is offered.
    assert not [b for b in browser.find_all("button") if b.text == "Delete selected"]
    browser.shot("runs-deleted-shown")
    next(b for b in browser.find_all("button") if b.text == "Restore selected").click()
    browser.wait_until(lambda: client.get_run(doomed).info.lifecycle_stage == "active", "restored in the store")
    browser.wait_until(lambda: not browser.find_all(f".grid-row[data-run-id='{doomed}'].deleted"), "the row no longer marked")
