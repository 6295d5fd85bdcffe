"""The governance views at a laptop size and a phone-like width: a screenshot of each, and none
pushes the page wider than the window."""

from __future__ import annotations

from urllib.parse import quote

import pytest

SIZES = {"1280x800": (1280, 800), "narrow": (420, 800)}

# The outermost elements that reach past the window's right edge, to say what to fix.
WIDEST = """
const w = document.documentElement.clientWidth;
return [...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > w + 1 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > w + 1 && e.parentElement.closest('main') ))
  .slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.') + ' ' + Math.round(e.getBoundingClientRect().right));
"""


@pytest.mark.parametrize("size", SIZES)
def test_every_governance_view_fits_the_window(gov, story, size):
    before = gov.driver.get_window_size()
    views = {
        "models": ("/models", "models"),
        "model": (f"/models/{quote(story.model)}", "model"),
        "version": (f"/models/{quote(story.governed)}/versions/1", "version"),
        "lineage": (f"/lineage?node={quote(story.m2['model_version'])}&up=6&down=1", "lineage"),
        "trace": (f"/trace?id={quote(story.first_prediction)}", "trace"),
        "deployments": ("/deployments", "deployments"),
        "health": ("/health", "health"),
        "audit": ("/audit", "audit"),
    }
    try:
        gov.driver.set_window_size(*SIZES[size])
        for name, (path, mark) in views.items():
            gov.open(path)
            gov.wait_mark(mark)
            overflow = gov.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            gov.shot(f"gov-layout-{size}-{name}")
            assert overflow <= 0, f"{name} at {size} is {overflow}px wider than the window: {gov.js(WIDEST)}"
    finally:
        gov.driver.set_window_size(before["width"], before["height"])
