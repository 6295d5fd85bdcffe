"""The run page: every section, tag editing, artifact previews, payloads inert, not-found."""

from __future__ import annotations

from data import SPIKE_STEP, XSS


def open_run(browser, dataset, run_id):
    browser.open(f"/experiments/{dataset.experiment_id}/runs/{run_id}")
    browser.wait_mark("run")


def test_run_page_shows_every_section(browser, dataset):
    rid = dataset.run_ids[3]
    open_run(browser, dataset, rid)
    assert browser.find("#run-title").text.startswith("run-03")
    for section in ("Overview", "Description", "Parameters", "Metrics", "Tags", "Datasets", "Models", "Upstream lineage", "Charts", "Artifacts"):
        assert browser.find_all(f"h2[id]") and section in [h.text for h in browser.find_all("h2")], section
    params = browser.find("#params").find_element("xpath", "..").text
    assert "lr" in params and dataset.params[rid]["lr"] in params
    browser.wait(".sparkline")
    browser.wait_mark("chart")
    browser.shot("run-page")


def test_child_and_parent_link_each_other(browser, dataset):
    open_run(browser, dataset, dataset.parent_id)
    browser.wait_text("#overview + dl, .facts", "sweep-child-0")
    open_run(browser, dataset, dataset.child_ids[0])
    link = browser.wait(f".facts a[href$='{dataset.parent_id}']")
    assert link.text == dataset.parent_id


def test_tags_can_be_added_edited_and_deleted(browser, dataset):
    rid = dataset.run_ids[4]
    open_run(browser, dataset, rid)
    section = browser.find("#tags").find_element("xpath", "..")
    key, value = section.find_elements("css selector", "form.tag-add input")
    key.send_keys("reviewed")
    value.send_keys("yes")
    add = section.find_element("css selector", "form.tag-add button[type=submit]")
    # The button lies inside its own card (it once overflowed into the Datasets card).
    assert browser.js(
        "const b = arguments[0].getBoundingClientRect(), c = arguments[1].getBoundingClientRect();"
        "return b.left >= c.left && b.right <= c.right && b.bottom <= c.bottom;",
        add,
        section,
    ), "Add tag button outside the Tags card"
    add.click()
    browser.wait_until(lambda: "reviewed" in section.text and "yes" in section.text, "tag added")
    browser.shot("run-tags")
    browser.wait("button[aria-label='Edit tag reviewed']").click()
    box = browser.wait("#tag-reviewed")
    box.clear()
    box.send_keys("twice")
    box.submit()
    browser.wait_until(lambda: "twice" in browser.find("#tags").find_element("xpath", "..").text, "edited")
    browser.find("button[aria-label='Delete tag reviewed']").click()
    browser.wait_until(lambda: "reviewed" not in browser.find("#tags").find_element("xpath", "..").text, "deleted")


def test_payloads_in_every_field_stay_text(browser, dataset):
    open_run(browser, dataset, dataset.xss_run_id)
    assert browser.find("#run-title").text.startswith(XSS)
    page = browser.find("article").text
    assert page.count(XSS) >= 3  # name, param, tag, description
    desc = browser.find("#description").find_element("xpath", "..")
    assert desc.find_elements("css selector", "h3")[0].text == f"Notes {XSS}"
    # The javascript: link is not made clickable.
    assert [a.get_attribute("href") for a in desc.find_elements("css selector", "a")] == []
    browser.wait(".artifact-tree")
    for name in ("page.html", "drawing.svg", f"{XSS}.txt", "notes.md", "table.csv"):
        open_artifact(browser, name)
        assert browser.find_all("img[src='x']") == []
        assert browser.find_all(".artifact-preview script, .artifact-preview iframe, .artifact-preview svg") == []
    browser.shot("run-xss")


def open_artifact(browser, name: str):
    button = next(b for b in browser.find_all(".artifact-tree button") if b.text.split(" ")[1:] and name in b.text)
    button.click()
    browser.wait_until(lambda: name in browser.find(".artifact-preview header").text and not browser.find_all(".artifact-preview [role=status]"), f"preview of {name}")
    return browser.find(".artifact-preview")


def test_artifact_previews(browser, dataset):
    open_run(browser, dataset, dataset.xss_run_id)
    browser.wait(".artifact-tree")
    html = open_artifact(browser, "page.html")
    assert "<script>alert(2)</script>" in html.find_element("css selector", "pre").text
    csv = open_artifact(browser, "table.csv")
    cells = [td.text for td in csv.find_elements("css selector", "tbody td")]
    assert cells[:3] == ["1", "2", XSS]
    js = open_artifact(browser, "config.json")
    assert '"lr": 0.1' in js.text
    md = open_artifact(browser, "notes.md")
    assert md.find_element("css selector", "h3").text == "Readme"
    assert len(md.find_elements("css selector", "li")) == 2
    png = open_artifact(browser, "pixel.png")
    img = browser.wait(".artifact-preview img")
    browser.wait_until(lambda: browser.js("return arguments[0].naturalWidth", img) == 2, "image decoded")
    assert img.get_attribute("src").startswith("blob:")
    assert "sha256:" in png.text and "Download" in png.text
    # The MLmodel file sits in a folder.
    next(b for b in browser.find_all(".artifact-tree button") if "model" in b.text and "📁" in b.text).click()
    mlmodel = open_artifact(browser, "MLmodel")
    assert "python_function" in mlmodel.text
    browser.shot("run-artifacts")


def test_million_style_chart_keeps_the_spike(browser, dataset):
    open_run(browser, dataset, dataset.long_run_id)
    browser.wait_mark("chart")
    # 5,000 points into 1,000 buckets: the series is sampled, and the spike at one step survives
    # as the band's maximum.
    detail = browser.js("return performance.getEntriesByName('cairn:chart:ready').slice(-1)[0].detail")
    assert detail["key"] == "loss" and detail["points"] <= 1000
    assert browser.js(
        "return fetch(arguments[0]).then(r => r.json()).then(b => Math.max(...b.series[0].max))",
        f"/api/cairn/v1/metrics/sampled?run_id={dataset.long_run_id}&key=loss&points=1000",
    ) == 10.0
    browser.shot("run-long-series")
    assert SPIKE_STEP > 0


def test_unknown_run_and_experiment_show_not_found(browser, dataset):
    browser.expect_console_error("status of 404")
    browser.open(f"/experiments/{dataset.experiment_id}/runs/0123456789abcdef0123456789abcdef")
    assert "Run not found" in browser.wait("#not-found-title").text
    browser.shot("run-not-found")
    browser.open("/experiments/987654")
    assert "Experiment not found" in browser.wait("#not-found-title").text
    browser.open("/no/such/page")
    assert "Page not found" in browser.wait("#not-found-title").text


def test_lost_connection_shows_what_failed_and_a_retry(browser, dataset):
    browser.expect_console_error("Failed to fetch|ERR_|status of 5")
    browser.open(f"/experiments/{dataset.experiment_id}/runs/{dataset.run_ids[0]}")
    browser.wait_mark("run")
    # Point the app's fetches at a closed port by blocking the API through the CDP.
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/api/*"]})
    try:
        browser.go(f"/experiments/{dataset.experiment_id}/runs/{dataset.run_ids[1]}")
        alert = browser.wait(".error-box[role=alert]")
        assert "Could not load" in alert.text and "NETWORK_ERROR" in alert.text
        browser.shot("run-network-error")
    finally:
        browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    browser.find(".error-box button").click()
    browser.wait_mark("run", at_least=2)
