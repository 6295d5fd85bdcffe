"""The lineage explorer on the provenance story: the graph around a deployment now and as of
before the re-versioning, node kinds and PROV edge labels, the side panel, recentring and
expanding, diff mode marking the changed data, exports, and unknown nodes."""

from __future__ import annotations

from urllib.parse import quote

from test_registry import iso


def ids(gov) -> set[str]:
    return {g.get_attribute("data-id") for g in gov.find_all(".graph-node")}


def open_lineage(gov, query: str) -> None:
    gov.open(f"/lineage?{query}")
    gov.wait_mark("lineage")


def test_the_deployment_now_and_as_of_before_the_reversioning(gov, story):
    dep = f"deployment:{story.deployment}"
    open_lineage(gov, f"node={quote(dep)}&up=8&down=0")
    now = ids(gov)
    assert story.m2["model_version"] in now and story.v2["clean"] in now and story.v2["raw"] in now
    assert story.m1["model_version"] not in now and story.v1["clean"] not in now
    kinds = {g.get_attribute("class").split()[1] for g in gov.find_all(".graph-node")}
    assert {"kind-deployment", "kind-model-version", "kind-run", "kind-slice", "kind-dataset", "kind-code"} <= kinds, kinds
    labels = {t.text for t in gov.find_all(".edge-label")}
    assert {"prov:used", "prov:wasDerivedFrom", "prov:wasGeneratedBy", "prov:used (served)"} <= labels, labels
    gov.shot("lineage-deployment-now")

    open_lineage(gov, f"node={quote(dep)}&up=8&down=0&asOf={iso(story.before)}")
    then = ids(gov)
    assert story.m1["model_version"] in then and story.v1["clean"] in then
    assert story.m2["model_version"] not in then and story.v2["clean"] not in then
    gov.shot("lineage-deployment-as-of")


def test_clicking_a_node_shows_its_digest_and_recentres_or_expands(gov, story):
    open_lineage(gov, f"node={quote(story.m1['model_version'])}&up=6&down=0")
    gov.find(f'.graph-node[data-id="{story.v1["clean"]}"]').click()
    panel = gov.wait_text(".lineage-panel", story.v1["clean_digest"])
    assert "row_count" in panel.text and "s3://lake/clean/v1.parquet" in panel.text
    assert f"sel={story.v1['clean']}" in gov.hash
    gov.shot("lineage-side-panel")
    before = gov.marks("lineage")
    gov.find(".lineage-panel button:nth-of-type(1)").click()  # Recentre here
    gov.wait_mark("lineage", before + 1)
    assert f"node={story.v1['clean']}" in gov.hash
    # Centred on the cleaned data: what it came from, and not the model trained later on it.
    shown = ids(gov)
    assert story.v1["raw"] in shown and story.v1["prep"] in shown, shown
    assert story.m1["model_version"] not in shown


def test_diff_mode_marks_the_changed_dataset(gov, story):
    open_lineage(gov, f"node={quote(story.m1['model_version'])}&up=6&down=0&diff={quote(story.m2['model_version'])}")
    summary = gov.find(".diff-summary").text
    assert "different data" in summary and "same code" in summary, summary
    left = {g.get_attribute("data-id") for g in gov.find_all(".graph-node.diff-left")}
    right = {g.get_attribute("data-id") for g in gov.find_all(".graph-node.diff-right")}
    assert story.v1["clean"] in left and story.v1["slice"] in left, left
    assert story.v2["clean"] in right and story.v2["slice"] in right, right
    shared = {g.get_attribute("data-id") for g in gov.find_all(".graph-node.diff-shared")}
    assert any(i.startswith("code:") for i in shared), shared
    gov.shot("lineage-diff")


def capture_downloads(gov) -> None:
    gov.js(
        "window.__downloads = [];"
        "const make = URL.createObjectURL.bind(URL);"
        "URL.createObjectURL = (blob) => { blob.text().then(t => window.__downloads.push({type: blob.type, text: t})); return make(blob); };"
        "HTMLAnchorElement.prototype.click = function () {};"
    )


def test_the_shown_subgraph_exports_as_prov_json_dot_and_svg(gov, story):
    open_lineage(gov, f"node={quote(story.m2['model_version'])}&up=6&down=1")
    capture_downloads(gov)
    for label in ("PROV-JSON", "DOT", "SVG"):
        gov.driver.find_element("xpath", f"//button[text()='{label}']").click()
    gov.wait_until(lambda: len(gov.js("return window.__downloads")) == 3, "three downloads")
    files = {d["type"]: d["text"] for d in gov.js("return window.__downloads")}
    prov = files["application/json"]
    assert story.v2["slice_digest"] in prov and '"wasDerivedFrom"' in prov
    dot = files["text/vnd.graphviz"]
    assert dot.startswith("digraph lineage {") and f'"{story.v2["slice"]}"' in dot
    svg = files["image/svg+xml"]
    assert svg.startswith("<svg") and "prov:used" in svg


def test_unknown_nodes_give_a_clear_not_found(gov, story):
    gov.expect_console_error("404")
    gov.open("/lineage?node=dataset:nothing@v0")
    assert "not found" in gov.wait("#not-found-title").text
    assert "dataset:nothing@v0" in gov.find(".not-found").text


def test_expanding_a_node_adds_its_neighbours_and_keeps_them_in_the_address(gov, story):
    open_lineage(gov, f"node={quote(story.m1['model_version'])}&up=1&down=0")
    assert story.m1["run"] in ids(gov) and story.v1["slice"] not in ids(gov)
    gov.find(f'.graph-node[data-id="{story.m1["run"]}"]').click()
    gov.wait_text(".lineage-panel", story.m1["run"])
    before = gov.marks("lineage")
    gov.driver.find_element("xpath", "//button[text()='Expand neighbours']").click()
    gov.wait_mark("lineage", before + 1)
    assert story.v1["slice"] in ids(gov), "the run's inputs joined the graph"
    assert f"exp={story.m1['run']}" in gov.hash
