"""The experiments list and the shell: the first page a user opens."""

from __future__ import annotations

from data import XSS


def test_root_lists_experiments_with_run_counts(browser, dataset):
    browser.open()
    browser.wait_mark("experiments")
    link = browser.wait_text("table.experiments", dataset.experiment_name)
    row = next(r for r in browser.find_all("table.experiments tbody tr") if dataset.experiment_name in r.text)
    # 30 runs, a parent with two children, the long series and the XSS run.
    browser.wait_until(lambda: "35" in row.find_elements("css selector", "td")[2].text, "run count")
    assert "team: vision" in row.text
    assert link is not None
    browser.shot("experiments")


def test_search_filters_by_name_and_is_kept_in_the_address(browser, dataset):
    browser.open()
    browser.wait_mark("experiments")
    box = browser.wait("input[type=search]")
    box.send_keys(dataset.experiment_name)
    browser.wait_until(lambda: len(browser.find_all("table.experiments tbody tr")) == 1, "one row left")
    assert dataset.experiment_name in browser.hash


def test_payload_in_an_experiment_name_stays_text(browser, dataset):
    browser.open()
    browser.wait_mark("experiments")
    browser.wait_text("table.experiments", XSS)
    assert browser.find_all("img[src='x']") == []
