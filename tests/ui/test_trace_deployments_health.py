"""A prediction's trace, the deployments timeline and lineage health on the provenance story."""

from __future__ import annotations

from urllib.parse import quote

from test_registry import iso


def test_a_prediction_traces_to_its_data_code_and_environment_with_digests(gov, story):
    gov.open(f"/trace?id={quote(story.first_prediction)}")
    gov.wait_mark("trace")
    chain = [li.get_attribute("data-id") for li in gov.find_all(".trace-chain li")]
    order = [f"prediction:{story.first_prediction}", f"deployment:{story.deployment}", story.m1["model_version"], story.m1["run"], story.v1["slice"]]
    assert [c for c in chain if c in order] == order, chain
    text = gov.find(".trace-chain").text
    for digest in (story.v1["slice_digest"], story.v1["clean_digest"], story.v1["raw_digest"]):
        assert digest[:12] in text, digest
    assert any(c.startswith("code:") for c in chain) and any(c.startswith("env:") for c in chain), chain
    assert "✓ complete" in gov.find(".card").text
    gov.shot("trace")


def test_an_unknown_prediction_is_not_found(gov, story):
    gov.expect_console_error("404")
    gov.open("/trace?id=no-such-prediction")
    assert "not found" in gov.wait("#not-found-title").text


def test_the_deployments_timeline_shows_which_version_served_when(gov, story):
    gov.open("/deployments")
    gov.wait_mark("deployments")
    card = gov.find(f'.deployment[data-deployment="{story.deployment}"]')
    rows = [r.text for r in card.find_elements("css selector", "tbody tr")]
    assert len(rows) == 2 and story.m1["model_version"] in rows[0] and story.m2["model_version"] in rows[1], rows
    assert "serving" in rows[1] and "serving" not in rows[0]
    assert len(card.find_elements("css selector", ".deploy-bar")) == 2
    gov.shot("deployments")
    gov.open(f"/deployments?asOf={iso(story.before)}")
    gov.wait_mark("deployments")
    card = gov.find(f'.deployment[data-deployment="{story.deployment}"]')
    rows = [r.text for r in card.find_elements("css selector", "tbody tr")]
    assert len(rows) == 1 and story.m1["model_version"] in rows[0] and "serving" in rows[0], rows


def test_lineage_health_lists_incomplete_versions_and_flagged_predictions(gov, story):
    gov.open("/health")
    gov.wait_mark("health")
    incomplete = gov.find(".incomplete-table").text
    assert f"model-version:{story.governed}/1" in incomplete, incomplete
    assert "code_version" in incomplete and "environment" in incomplete, incomplete
    assert story.model not in incomplete, "the story's versions are complete"
    by = gov.find(".by-deployment-table").text
    assert story.deployment in by and "none (by model version)" in by
    assert len(gov.find_all(".health-chart .instant")) == 8
    for circle in gov.find_all(".health-chart circle"):
        assert " of 0 " not in circle.get_attribute("textContent"), "a point is drawn only where there are versions"
    gov.shot("health")


def test_lineage_health_before_any_model_version_shows_no_share(gov, story):
    """0 of 0 versions is not "100% complete": the stat is a dash and the chart draws no point."""
    gov.open("/health?asOf=2001-01-01T00:00:00.000Z")
    gov.wait_mark("health")
    assert gov.find(".stat-versions").text == "—"
    assert "0 of 0" in gov.find(".stat").text
    assert gov.find_all(".health-chart circle") == []
    instants = gov.find_all(".health-chart .instant")
    assert instants and len(gov.find_all(".health-chart .no-versions")) == len(instants)
    assert "No model versions at this instant" in gov.find("section").text
    gov.shot("health-before-any-version")
