"""Every view at a laptop size (1280x800) and a phone-like width (420 px): a screenshot of each,
and no view pushes the page wider than the window (wide tables scroll inside their own box)."""

from __future__ import annotations

import pytest

SIZES = {"1280x800": (1280, 800), "narrow": (420, 800)}


def views(dataset) -> dict[str, tuple[str, str]]:
    exp, ids = dataset.experiment_id, dataset.run_ids
    return {
        "experiments": ("/experiments", "experiments"),
        "runs": (f"/experiments/{exp}?cols=metrics.loss,params.lr", "runs"),
        "runs-grouped": (f"/experiments/{exp}?cols=metrics.loss,metrics.acc&group=params.optimizer", "runs"),
        "runs-charts": (f"/experiments/{exp}?sel={','.join(ids[:3])}&view=charts", "chart"),
        "run": (f"/experiments/{exp}/runs/{ids[4]}", "run"),
        "compare": (f"/compare-runs?runs={','.join(ids[:5])}&experiments={exp}", "compare"),
        "models": ("/models", "models"),
    }


@pytest.fixture
def sized(browser):
    before = browser.driver.get_window_size()
    yield browser
    browser.driver.set_window_size(before["width"], before["height"])


@pytest.mark.parametrize("size", SIZES)
def test_every_view_fits_the_window(sized, dataset, size):
    browser = sized
    browser.driver.set_window_size(*SIZES[size])
    for name, (path, mark) in views(dataset).items():
        browser.open(path)
        browser.wait_mark(mark)
        overflow = browser.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        browser.shot(f"layout-{size}-{name}")
        assert overflow <= 0, f"{name} at {size} is {overflow}px wider than the window"
