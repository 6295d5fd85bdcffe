"""State in the address: back and forward walk through filter, sort and tab changes; zooming a
chart fetches the chosen steps at full detail; the dark theme follows the system setting."""

from __future__ import annotations

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from test_runs import names


def test_back_and_forward_walk_through_view_states(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}")
    browser.wait_mark("runs")
    start = browser.hash
    box = browser.wait("#runs-filter")
    box.send_keys("params.optimizer = 'sgd'", Keys.ENTER)
    browser.wait_until(lambda: "filter=" in browser.hash, "filter in the address")
    browser.wait_until(lambda: names(browser) and "run-28" not in names(browser), "only sgd runs")
    filtered = browser.hash
    browser.find("button[aria-label='Sort by Run name']").click()
    browser.wait_until(lambda: "order=" in browser.hash, "sort in the address")
    sorted_ = browser.hash
    next(t for t in browser.find_all("[role=tab]") if t.text == "Charts").click()
    browser.wait_until(lambda: "view=charts" in browser.hash, "chart tab in the address")

    browser.driver.back()
    browser.wait_until(lambda: browser.hash == sorted_, "back to the sorted table")
    browser.wait(".runs-grid")
    browser.driver.back()
    browser.wait_until(lambda: browser.hash == filtered, "back to the filtered table")
    browser.wait_until(lambda: browser.find("#runs-filter").get_attribute("value") == "params.optimizer = 'sgd'", "the filter box follows")
    browser.driver.back()
    browser.wait_until(lambda: browser.hash == start, "back to the start")
    browser.wait_until(lambda: browser.find("#runs-filter").get_attribute("value") == "", "the filter box cleared")
    browser.wait_until(lambda: "run-28" in names(browser), "every run again")
    browser.driver.forward()
    browser.wait_until(lambda: browser.hash == filtered, "forward to the filter")
    browser.wait_until(lambda: names(browser) and "run-28" not in names(browser), "filtered again")


def chart_marks(browser) -> list[dict]:
    return browser.js("return performance.getEntriesByName('cairn:chart:ready').map(e => e.detail)")


def test_zooming_a_chart_fetches_the_range_at_full_detail(browser, dataset):
    browser.open(f"/experiments/{dataset.experiment_id}/runs/{dataset.long_run_id}")
    browser.wait_mark("chart")
    card = browser.find(".chart-card[aria-label^='Chart of loss']")
    assert card.find_element("css selector", "h3").text == "loss"
    over = card.find_element("css selector", ".u-over")
    width = over.size["width"]
    before = len(chart_marks(browser))
    # Drag over about a twentieth of the 5,000 steps: fewer steps than buckets.
    ActionChains(browser.driver).move_to_element_with_offset(over, -width // 10, 0).click_and_hold().move_by_offset(width // 20, 0).release().perform()
    title = browser.wait_until(lambda: (t := card.find_element("css selector", "h3").text) != "loss" and t, "the zoomed title")
    assert "steps" in title and "double-click to reset" in title, title
    low, high = (int(v) for v in title.split("steps ")[1].split(";")[0].split("–"))
    assert 0 < high - low < 1000, title
    # The old plot redraws at the dragged scale (marking again) before the new range arrives;
    # the new plot's mark is the one with every step of the range.
    browser.wait_until(lambda: len(chart_marks(browser)) > before and chart_marks(browser)[-1]["points"] == high - low + 1, "the zoomed chart drawn")
    # The range was asked of the server, and every step in it came back.
    asked = browser.js("return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes('/metrics/sampled') && n.includes('start_step'))")
    assert any(f"start_step={low}" in url and f"end_step={high}" in url for url in asked), asked
    browser.shot("run-chart-zoomed")
    # The zoomed chart is a new plot: double-click its own overlay.
    over = browser.find(".chart-card[aria-label^='Chart of loss'] .u-over")
    ActionChains(browser.driver).double_click(over).perform()
    browser.wait_until(lambda: browser.find(".chart-card[aria-label^='Chart of loss'] h3").text == "loss", "zoom reset")


def test_dark_theme_follows_the_system_setting(browser, dataset):
    browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        browser.open(f"/experiments/{dataset.experiment_id}/runs/{dataset.run_ids[2]}")
        browser.wait_mark("run")
        browser.wait_mark("chart")
        background = browser.js("return getComputedStyle(document.body).backgroundColor")
        text = browser.js("return getComputedStyle(document.body).color")
        assert background == "rgb(20, 23, 28)", background
        assert text == "rgb(228, 231, 236)", text
        # Inputs and tables follow too, not only the page behind them.
        assert browser.js("return getComputedStyle(document.querySelector('input')).backgroundColor") == background
        browser.shot("dark-run-page")
        browser.shot_element(".chart-card", "dark-chart")
        browser.open(f"/experiments/{dataset.experiment_id}")
        browser.wait_mark("runs")
        browser.shot("dark-runs-table")
    finally:
        browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    browser.open(f"/experiments/{dataset.experiment_id}")
    browser.wait_mark("runs")
    assert browser.js("return getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
