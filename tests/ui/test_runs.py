"""The runs table: rows, sort on the server, filter (valid and invalid), column picker, nested
runs, grouping, selection, keyboard, and the chart tab."""

from __future__ import annotations

from selenium.webdriver.common.keys import Keys

from data import XSS


def names(browser) -> list[str]:
    """The names of the run rows the virtualised grid has drawn, top to bottom (the link's text,
    without the tree toggle)."""
    rows = sorted(browser.find_all(".grid-row[data-run-id]"), key=lambda r: int(r.get_attribute("aria-rowindex")))
    return [r.find_element("css selector", ".cell:nth-child(2) a").text for r in rows]


def scroll_to_row(browser, run_id: str):
    """Scrolls the grid down half a view per poll until the run's row is drawn, as a user would;
    only rows near the view are in the DOM."""
    browser.js("document.querySelector('.runs-grid').scrollTop = 0")

    def drawn():
        rows = browser.find_all(f".grid-row[data-run-id='{run_id}']")
        if rows:
            return rows[0]
        browser.js("const g = document.querySelector('.runs-grid'); g.scrollTop += g.clientHeight / 2")
        return None

    return browser.wait_until(drawn, f"row {run_id} drawn")


def test_runs_table_shows_runs_with_nested_children(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}")
    browser.wait_mark("runs")
    browser.wait(".grid-row[data-run-id]")
    shown = names(browser)
    # Newest first: the payload run, the long series, the parent, then the ordinary runs.
    assert shown[:4] == [XSS, "long-series", "sweep-parent", "run-29"], shown[:4]
    # Children start folded under their parent.
    assert "sweep-child-0" not in shown
    # The oldest run is the last row; it is drawn once scrolled to, and the rows at the top are
    # then no longer in the DOM only if the grid is taller than the view.
    scroll_to_row(browser, dataset.run_ids[0])
    assert "run-00" in names(browser)
    browser.js("document.querySelector('.runs-grid').scrollTop = 0")
    browser.wait(f".grid-row[data-run-id='{dataset.parent_id}']")
    parent = browser.find(f".grid-row[data-run-id='{dataset.parent_id}']")
    parent.find_element("css selector", "button.tree-toggle").click()
    browser.wait(f".grid-row[data-run-id='{dataset.child_ids[0]}']")
    assert "sweep-child-1" in names(browser)
    # The XSS run's name is text.
    assert XSS in names(browser)
    assert browser.find_all("img[src='x']") == []
    browser.shot("runs-table")


def test_sort_by_a_metric_column_is_done_by_the_server_and_kept_in_the_address(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}?cols=metrics.loss,params.lr")
    browser.wait_mark("runs")
    browser.wait(".grid-row[data-run-id]")
    browser.find("button[aria-label='Sort by loss']").click()
    browser.wait_until(lambda: "order=-metrics.loss" in browser.hash, "sort in the address")
    # Descending by loss: run-29 has the largest final loss among the ordinary runs (1/50 + 0.29)
    # but the long series ends near 1.0 and the parent has none; MLflow puts missing values last.
    browser.wait_until(lambda: names(browser)[:1] == ["long-series"], "long-series first")
    assert names(browser)[1] == "run-29"
    header = browser.find("button[aria-label='Sort by loss']")
    assert header.get_attribute("aria-sort") == "descending"
    browser.find("button[aria-label='Sort by loss']").click()
    # Ascending: run-00 ends lowest (1/50). The children (0.4, 0.5) are folded under their parent,
    # which has no loss and so comes last.
    browser.wait_until(lambda: "order=metrics.loss" in browser.hash and names(browser)[:2] == ["run-00", "run-01"], "ascending")
    browser.shot("runs-sorted")
    # Back returns to the descending order.
    browser.driver.back()
    browser.wait_until(lambda: names(browser)[:1] == ["long-series"], "back to descending")


def test_valid_filter_narrows_rows_and_a_wrong_one_shows_the_server_error(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}")
    browser.wait_mark("runs")
    box = browser.wait("#runs-filter")
    box.send_keys("params.optimizer = 'adam' and metrics.loss < 0.1", Keys.ENTER)
    browser.wait_until(lambda: "filter=" in browser.hash, "filter in the address")
    browser.wait_until(lambda: names(browser) and all(dataset.params.get(_id(browser, n), {}).get("optimizer") == "adam" for n in names(browser)), "only adam runs")
    expected = {n for rid, n in dataset.names.items() if dataset.params[rid]["optimizer"] == "adam" and 1 / 50 + int(n[4:]) * 0.01 < 0.1}
    browser.wait_until(lambda: set(names(browser)) == expected, f"rows {expected}")

    browser.expect_console_error("status of 400")
    box = browser.find("#runs-filter")
    box.clear()
    box.send_keys("metrics.loss <<< 3", Keys.ENTER)
    error = browser.wait("#filter-error")
    assert "Invalid" in error.text or "invalid" in error.text.lower(), error.text
    assert browser.find("#runs-filter").get_attribute("aria-invalid") == "true"
    browser.shot("runs-filter-error")


def _id(browser, name: str) -> str:
    row = next(r for r in browser.find_all(".grid-row[data-run-id]") if name in r.text)
    return row.get_attribute("data-run-id")


def test_filter_box_completes_keys(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}")
    browser.wait_mark("runs")
    box = browser.wait("#runs-filter")
    box.send_keys("metrics.lo")
    option = browser.wait("#filter-suggestions [role=option]")
    assert option.text == "metrics.loss"
    box.send_keys(Keys.TAB)
    assert browser.find("#runs-filter").get_attribute("value") == "metrics.loss"
    # Escape closes the suggestions and keeps what was typed.
    box.send_keys(" < 1 and params.op")
    browser.wait("#filter-suggestions [role=option]")
    box.send_keys(Keys.ESCAPE)
    browser.wait_until(lambda: not browser.find_all("#filter-suggestions"), "suggestions closed")
    assert browser.find("#runs-filter").get_attribute("value") == "metrics.loss < 1 and params.op"


def test_column_picker_adds_param_and_metric_columns(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}")
    browser.wait_mark("runs")
    browser.find(".column-picker > button").click()
    panel = browser.wait("#column-panel")
    for label in panel.find_elements("css selector", "label.checkbox"):
        if label.text in ("acc", "optimizer"):
            label.click()
    browser.wait_until(lambda: "cols=" in browser.hash, "columns in the address")
    headers = [h.text for h in browser.find_all(".grid-head [role=columnheader]")]
    assert any(h.startswith("acc") for h in headers) and any(h.startswith("optimizer") for h in headers), headers
    row = scroll_to_row(browser, dataset.run_ids[1])
    assert "sgd" in row.text and "0.979" in row.text, row.text  # run-01: optimizer sgd, final acc 49/50 - 0.001
    browser.shot("runs-columns")


def test_group_by_a_param_shows_min_mean_max(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}?cols=metrics.loss&group=params.optimizer")
    browser.wait_mark("runs")
    groups = browser.wait_until(lambda: browser.find_all(".group-row"), "group rows")
    texts = [g.text for g in groups]
    assert any("optimizer = adam (15)" in t for t in texts), texts
    assert any("optimizer = sgd (15)" in t for t in texts), texts
    assert all(" / " in t for t in texts if "(none)" not in t)
    browser.shot("runs-grouped")


def test_keyboard_moves_selects_and_opens_runs(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}")
    browser.wait_mark("runs")
    grid = browser.wait(".runs-grid")
    grid.click()
    grid.send_keys(Keys.HOME, Keys.ARROW_DOWN, " ")
    browser.wait_until(lambda: "sel=" in browser.hash, "selection in the address")
    active = browser.find(".grid-row.active")
    assert active.get_attribute("aria-selected") == "true"
    run_id = active.get_attribute("data-run-id")
    browser.find(".runs-grid").send_keys(Keys.ENTER)
    browser.wait_mark("run")
    assert browser.hash.endswith(f"/runs/{run_id}")


def test_selection_leads_to_charts_and_compare(browser, dataset):
    sel = ",".join(dataset.run_ids[:3])
    browser.open(f"/experiments/{dataset.experiment_id}?sel={sel}&view=charts&smooth=0.5")
    browser.wait_mark("chart")
    canvases = browser.find_all(".chart-card canvas")
    assert len(canvases) >= 2  # acc and loss
    assert canvas_has_pixels(browser, canvases[0])
    legend = browser.find(".chart-legend").text
    assert "run-00" in legend and "run-02" in legend
    browser.shot("runs-charts")
    browser.find("[role=tab]").click()  # back to the table
    link = browser.wait("a.button-link")
    assert "Compare 3 runs" in link.text


def canvas_has_pixels(browser, canvas) -> bool:
    return browser.js(
        """const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n > 100;""",
        canvas,
    )


def test_scrolling_follows_page_tokens(browser, dataset, server):
    # 250 runs in their own experiment: the first page holds 100, scrolling loads the rest.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server.url)
    exp = client.create_experiment(f"many-{dataset.experiment_name}")
    from mlflow.entities import RunTag

    for i in range(250):
        run = client.create_run(exp, run_name=f"m-{i:03d}")
        client.log_batch(run.info.run_id, tags=[RunTag("i", str(i))])
    browser.open(f"/experiments/{exp}")
    browser.wait_mark("runs")
    browser.wait_text(".view-header ~ .toolbar .muted, .toolbar .muted", "100 runs loaded")

    def scrolled_to_the_end() -> bool:
        # Each poll scrolls to the bottom of what is loaded; reaching it asks for the next page.
        browser.js("const g = document.querySelector('.runs-grid'); g.scrollTop = g.scrollHeight")
        return "All runs loaded" in browser.find(".grid-footer").text

    browser.wait_until(scrolled_to_the_end, "every page loaded by scrolling")
    assert "250 runs" in browser.find(".toolbar .muted").text
    # Only the rows in view are in the DOM.
    assert len(browser.find_all(".grid-row")) < 80
    browser.shot("runs-scrolled")
