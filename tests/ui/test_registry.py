"""The registry views on the provenance story: the models list, a model's versions and history,
a version's pinned files, policy verdict and lineage, the registry as of before the retraining,
payloads in names and tags, and unknown models."""

from __future__ import annotations

from urllib.parse import quote

from governance import XSS, api


def iso(ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_models_list_shows_versions_aliases_and_searches(gov, story):
    gov.open("/models")
    gov.wait_mark("models")
    row = gov.wait_text(".models-table", story.model)
    assert "@champion → v2" in row.text
    gov.shot("registry-models")
    gov.open(f"/models?q={quote(story.governed)}")
    gov.wait_mark("models")
    names = [a.text for a in gov.find_all(".models-table tbody td:first-child a")]
    assert names == [story.governed], names


def test_a_models_page_lists_versions_with_lineage_and_its_alias_history(gov, story):
    gov.open(f"/models/{quote(story.model)}")
    gov.wait_mark("model")
    rows = gov.find_all(".versions-table tbody tr")
    assert [r.find_element("css selector", "td").text for r in rows] == ["v2", "v1"]
    assert "Archived" in rows[1].text and "@champion" in rows[0].text
    # Completeness arrives per row after the table is shown.
    gov.wait_until(lambda: all("complete" in r.text for r in gov.find_all(".versions-table .lineage-cell")), "completeness")
    history = gov.find(".timeline").text
    assert "alias @champion: v1 → v2" in history and "stage of v1: None → Archived" in history, history
    gov.shot("registry-model")


def test_as_of_before_the_retraining_the_model_had_one_version(gov, story):
    gov.open(f"/models/{quote(story.model)}?asOf={iso(story.before)}")
    gov.wait_mark("model")
    assert iso(story.before)[:19] in gov.hash
    rows = gov.find_all(".versions-table tbody tr")
    assert len(rows) == 1 and "v1" in rows[0].text and "@champion" in rows[0].text, [r.text for r in rows]
    assert "Archived" not in rows[0].text, "the archival came later"
    assert "as it stood" in gov.find(".as-of-banner").text
    gov.shot("registry-model-as-of")
    # The list, as of then, shows the alias as it was.
    gov.open(f"/models?asOf={iso(story.before)}")
    gov.wait_mark("models")
    row = gov.wait_text(".models-table", story.model)
    assert "@champion → v1" in row.text and story.governed not in row.text


def test_a_version_page_shows_files_digests_run_and_a_passing_verdict_for_other_models(gov, story):
    gov.open(f"/models/{quote(story.model)}/versions/2")
    gov.wait_mark("version")
    files = api(story, f"/models/{quote(story.model)}/versions/2/files")["files"]
    assert files, "the version pinned its files"
    table = gov.find(".files-table").text
    for f in files:
        assert f["path"] in table and f["digest"] in table
    assert "train-v2" in gov.find("#version-about").find_element("xpath", "..").text
    assert "No rule of the policy governs this model." in gov.find(".card #version-policy").find_element("xpath", "..").text
    gov.wait_until(lambda: "✓ complete" in gov.find("#version-about").find_element("xpath", "..").text, "complete lineage")
    gov.shot("registry-version")


def test_the_policy_verdict_lists_the_missing_facts_of_a_version_that_lacks_them(gov, story):
    gov.open(f"/models/{quote(story.governed)}/versions/1")
    gov.wait_mark("version")
    rule = gov.find(".policy-rule")
    assert "champions need full lineage" in rule.text and "would refuse" in rule.text
    missing = {li.get_attribute("data-fact") for li in gov.find_all(".policy-rule li.missing")}
    assert {"dataset", "code_version", "environment", "tag:validated_by"} <= missing, missing
    assert "alias @champion" in rule.text and "stage Production" in rule.text
    card = gov.find("#version-about").find_element("xpath", "..").text
    assert "✗ incomplete" in card, card
    gov.shot("registry-version-policy-missing")


def test_payloads_in_names_tags_and_descriptions_stay_text(gov, story):
    gov.open("/models")
    gov.wait_mark("models")
    gov.wait_text(".models-table", XSS)
    assert not gov.find_all(".models-table img"), "a payload became an element"
    gov.open(f"/models/{quote(story.xss_model)}")
    gov.wait_mark("model")
    assert XSS in gov.find("h1").text
    assert not gov.find_all("main img")


def test_unknown_models_and_versions_are_not_found(gov, story):
    gov.expect_console_error("404")
    gov.open("/models/no-such-model")
    assert "not found" in gov.wait("#not-found-title").text
    gov.open(f"/models/{quote(story.model)}/versions/99")
    assert "not found" in gov.wait("#not-found-title").text


def test_an_attestation_file_is_checked_against_the_version(gov, story, gov_server, tmp_path):
    from servers import cairn_cli

    key = tmp_path / "key"
    assert cairn_cli("attest", "--generate-key", str(key)).returncode == 0
    good = tmp_path / "v2.attestation.json"
    made = cairn_cli("attest", f"{story.model}@2", "--key", str(key), "--out", str(good), "--backend-store-uri", gov_server.backend_uri)
    assert made.returncode == 0, made.stderr
    gov.open(f"/models/{quote(story.model)}/versions/2")
    gov.wait_mark("version")
    gov.find(".attest input[type=file]").send_keys(str(good))
    gov.find(".attest input[name=public-key]").send_keys((tmp_path / "key.pub").read_text().strip())
    gov.wait_until(lambda: gov.find(".attest button").is_enabled(), "the file is read")
    gov.find(".attest button").click()
    result = gov.wait(".attest-result")
    gov.wait_text(".attest-result", "signature")
    items = result.find_elements("css selector", "li")
    assert [i.get_attribute("class") for i in items[:4]] == ["met"] * 4, [i.text for i in items]
    assert "valid for this key" in result.text
    gov.shot("registry-attestation")
    # The same attestation says nothing about version 1: another subject, other files.
    gov.open(f"/models/{quote(story.model)}/versions/1")
    gov.wait_mark("version")
    gov.find(".attest input[type=file]").send_keys(str(good))
    gov.wait_until(lambda: gov.find(".attest button").is_enabled(), "the file is read")
    gov.find(".attest button").click()
    missing = gov.wait(".attest-result").find_elements("css selector", "li.missing")
    assert len(missing) >= 2, [m.text for m in missing]
