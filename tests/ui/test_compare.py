"""The compare view: tables with only-differences, parallel coordinates, scatter, charts."""

from __future__ import annotations


def test_compare_view_shows_tables_plots_and_charts(browser, dataset):
    ids = dataset.run_ids[:4]
    browser.open(f"/compare-runs?runs={','.join(ids)}&experiments={dataset.experiment_id}")
    browser.wait_mark("compare")
    params = browser.find("section[aria-label=Parameters]")
    assert [th.text for th in params.find_elements("css selector", "tbody th")] == ["batch", "lr", "optimizer"]
    browser.find("label.checkbox input").click()
    # lr, batch and optimizer all differ among the first four runs; tags: team differs too.
    assert "optimizer" in browser.find("section[aria-label=Parameters]").text
    lines = browser.find_all(".parallel polyline")
    assert len(lines) == 4
    assert len(browser.find_all(".scatter circle")) == 4
    browser.wait_mark("chart")
    assert browser.find_all(".chart-card canvas")
    browser.shot("compare")
    browser.shot_element(".parallel", "compare-parallel")
    browser.shot_element(".scatter", "compare-scatter")


def test_only_differences_hides_equal_params(browser, dataset):
    # run-00 and run-12 share lr (0.1), optimizer (adam) and batch (32).
    ids = [dataset.run_ids[0], dataset.run_ids[12]]
    browser.open(f"/compare-runs?runs={','.join(ids)}")
    browser.wait_mark("compare")
    browser.find("label.checkbox input").click()
    assert "No differences." in browser.find("section[aria-label=Parameters]").text
