"""Script payloads in every user-supplied field the UI shows stay text in every view.

Its own experiment, logged with the real mlflow client: the experiment's name and a tag, and three
runs whose names, a param value, a tag value and the description each carry a payload that would
set `window.__pwned` (or raise an alert, which the fixture checks) if the UI ever turned it into
markup. MLflow only allows letters, digits and `_-. /` in keys, so the keys stay plain.
"""

from __future__ import annotations

import time

import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

PAYLOADS = [
    '<img src=x onerror="window.__pwned=1">',
    '<svg onload="window.__pwned=2"><circle r="9"/></svg>',
    '"><script>window.__pwned=3</script>',
]
EXPERIMENT = '<img src=x onerror="window.__pwned=4"> exp'


@pytest.fixture(scope="module")
def payload_runs(server) -> tuple[str, list[str]]:
    client = MlflowClient(tracking_uri=server.url)
    exp = client.create_experiment(f"{EXPERIMENT} {time.time_ns()}", tags={"note": PAYLOADS[1]})
    now = int(time.time() * 1000)
    ids = []
    for i, payload in enumerate(PAYLOADS):
        run = client.create_run(exp, run_name=payload)
        rid = run.info.run_id
        client.log_batch(
            rid,
            params=[Param("payload", payload), Param("lr", str(0.1 * (i + 1)))],
            tags=[RunTag("note", payload), RunTag("mlflow.note.content", f"# {payload}\n\n{payload} [x](javascript:window.__pwned=5)")],
            metrics=[Metric("loss", 1.0 / (i + 1) + s * 0.01, now + s, s) for s in range(20)],
        )
        client.set_terminated(rid)
        ids.append(rid)
    return exp, ids


def assert_inert(browser, view: str) -> None:
    """No payload became an element or ran: the marker is unset and no injected element exists."""
    assert browser.js("return window.__pwned === undefined"), f"a payload ran in the {view} view: {browser.js('return window.__pwned')}"
    injected = browser.js(
        "return Array.from(document.querySelectorAll('[onerror], [onload], img[src=\"x\"], body script')).map((e) => e.outerHTML)"
    )
    assert injected == [], f"payload markup in the {view} view: {injected}"


def test_payloads_stay_text_in_every_view(browser, payload_runs):
    exp, ids = payload_runs

    browser.open("/experiments")
    browser.wait_mark("experiments")
    browser.wait_text("table.experiments", EXPERIMENT)
    assert_inert(browser, "experiments")

    browser.open(f"/experiments/{exp}?cols=params.payload,tags.note,metrics.loss")
    browser.wait_mark("runs")
    browser.wait(".grid-row[data-run-id]")
    grid = browser.find(".runs-grid").text
    for payload in PAYLOADS:
        assert payload in grid, payload
    assert EXPERIMENT in browser.find("#runs-title").text
    assert_inert(browser, "runs table")

    browser.open(f"/experiments/{exp}?cols=metrics.loss&group=params.payload")
    browser.wait_mark("runs")
    groups = browser.wait_until(lambda: browser.find_all(".group-row"), "group rows")
    assert any(PAYLOADS[0] in g.text for g in groups)
    assert_inert(browser, "grouped runs table")

    browser.open(f"/experiments/{exp}?sel={','.join(ids)}&view=charts")
    browser.wait_mark("chart")
    legend = browser.find(".chart-legend").text
    assert all(p in legend for p in PAYLOADS), legend
    assert_inert(browser, "charts")

    browser.open(f"/compare-runs?runs={','.join(ids)}&experiments={exp}")
    browser.wait_mark("compare")
    page = browser.find("main").text
    assert all(p in page for p in PAYLOADS)
    # The parallel-coordinates axis of the payload param labels its ticks with the values, as text.
    labels = [t.text for t in browser.find_all(".parallel text")]
    assert any("window.__pwned" in t for t in labels), labels
    browser.wait_mark("chart")
    assert_inert(browser, "compare")
    browser.shot("compare-payloads")

    browser.open(f"/experiments/{exp}/runs/{ids[1]}")
    browser.wait_mark("run")
    assert browser.find("#run-title").text.startswith(PAYLOADS[1])
    desc = browser.find("#description").find_element("xpath", "..")
    assert desc.find_elements("css selector", "a[href^='javascript']") == []
    assert_inert(browser, "run")
