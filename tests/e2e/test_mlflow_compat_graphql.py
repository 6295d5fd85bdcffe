"""GraphQL at `POST /graphql` (issue 12, group 7), as MLflow's UI uses it: MLflow's schema and
field names, `LongString` for int64 values, `null` for NaN metric values, MLflow's answer shape
(`data` plus `errors` as a list of plain messages, or `null`), its `@component` directive, and
its refusal of queries that batch too many reads (root fields, aliases)."""

from __future__ import annotations

import uuid

import pytest
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient


def graphql(tracking, query: str, **extra) -> dict:
    reply = requests.post(
        f"{tracking.url}/graphql",
        json={"query": query, **extra},
        headers={"content-type": "application/json; charset=utf-8"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_echo_query(tracking):
    body = graphql(tracking, 'query testQuery { test(inputString: "abc") { output } }', operationName="testQuery")
    assert body == {"data": {"test": {"output": "abc"}}, "errors": None}


def test_get_experiment(client: MlflowClient, tracking, unique: str):
    experiment_id = client.create_experiment(f"gql-{unique}", tags={"k": "v"})
    query = (
        'query q { mlflowGetExperiment(input: {experimentId: "%s"}) '
        "{ experiment { experimentId name lifecycleStage creationTime tags { key value } } } }" % experiment_id
    )
    body = graphql(tracking, query)
    assert body["errors"] is None
    experiment = body["data"]["mlflowGetExperiment"]["experiment"]
    assert experiment["experimentId"] == experiment_id
    assert experiment["name"] == f"gql-{unique}"
    assert experiment["lifecycleStage"] == "active"
    assert isinstance(experiment["creationTime"], str) and int(experiment["creationTime"]) > 0
    assert experiment["tags"] == [{"key": "k", "value": "v"}]


def test_get_run_with_its_experiment_and_model_versions(client: MlflowClient, tracking, unique: str):
    name = f"gql-model-{unique}"
    client.create_registered_model(name)
    experiment_id = client.create_experiment(name)
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.create_model_version(name, f"runs:/{run_id}/model", run_id)
    query = """
        query testQuery @component(name: "Test") {
            mlflowGetRun(input: {runId: "%s"}) {
                run { info { status runId startTime } experiment { name } modelVersions { name version } }
            }
        }
    """ % run_id
    body = graphql(tracking, query, operationName="testQuery")
    assert body["errors"] is None, body
    got = body["data"]["mlflowGetRun"]["run"]
    assert got["info"]["status"] == run.info.status
    assert got["info"]["runId"] == run_id
    assert got["info"]["startTime"] == str(run.info.start_time)
    assert got["experiment"]["name"] == name
    assert got["modelVersions"] == [{"name": name, "version": "1"}]


def test_nan_metric_values_are_null(client: MlflowClient, tracking, experiment_id: str):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_metric(run_id, "nan_metric", float("nan"), step=1)
    client.log_metric(run_id, "fine", 0.5, step=2)
    query = 'query { mlflowGetRun(input: {runId: "%s"}) { run { data { metrics { key value step } } } } }' % run_id
    body = graphql(tracking, query)
    assert body["errors"] is None, body
    metrics = {m["key"]: m for m in body["data"]["mlflowGetRun"]["run"]["data"]["metrics"]}
    assert metrics["nan_metric"]["value"] is None
    assert metrics["fine"] == {"key": "fine", "value": 0.5, "step": "2"}


def test_search_runs_as_query_and_mutation(client: MlflowClient, tracking, experiment_id: str):
    runs = [client.create_run(experiment_id).info.run_id for _ in range(3)]
    client.log_param(runs[0], "p", "x")
    for kind in ["query", "mutation"]:
        text = (
            '%s { mlflowSearchRuns(input: {experimentIds: ["%s"], filter: "params.p = \'x\'", '
            "maxResults: 10}) { runs { info { runId } data { params { key value } } } "
            "nextPageToken } }" % (kind, experiment_id)
        )
        body = graphql(tracking, text)
        assert body["errors"] is None, body
        found = body["data"]["mlflowSearchRuns"]
        assert [r["info"]["runId"] for r in found["runs"]] == [runs[0]]
        assert found["runs"][0]["data"]["params"] == [{"key": "p", "value": "x"}]
    paged = graphql(
        tracking,
        'query { mlflowSearchRuns(input: {experimentIds: ["%s"], maxResults: 2}) { runs { info { runId } } nextPageToken } }'
        % experiment_id,
    )["data"]["mlflowSearchRuns"]
    assert len(paged["runs"]) == 2 and paged["nextPageToken"]


def test_metric_history_bulk_interval(client: MlflowClient, tracking, experiment_id: str):
    run_id = client.create_run(experiment_id).info.run_id
    for step in range(10):
        client.log_metric(run_id, "m", float(step), timestamp=1, step=step)
    query = (
        'query { mlflowGetMetricHistoryBulkInterval(input: {runIds: ["%s"], metricKey: "m"}) '
        "{ metrics { key value step timestamp runId } } }" % run_id
    )
    body = graphql(tracking, query)
    assert body["errors"] is None, body
    metrics = body["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
    assert [m["step"] for m in metrics] == [str(step) for step in range(10)]
    assert metrics[3] == {"key": "m", "value": 3.0, "step": "3", "timestamp": "1", "runId": run_id}


@pytest.mark.cairn_only
def test_metric_history_bulk_interval_honours_its_input_limits(client: MlflowClient, tracking, experiment_id: str):
    # MLflow's resolver reads max_results and the step range from the URL's query string, not
    # from the GraphQL input, so there they have no effect, and skips the REST route's checks;
    # Cairn reads the input and checks it as the REST route does.
    run_id = client.create_run(experiment_id).info.run_id
    for step in range(10):
        client.log_metric(run_id, "m", float(step), timestamp=1, step=step)
    query = (
        'query { mlflowGetMetricHistoryBulkInterval(input: {runIds: ["%s"], metricKey: "m", maxResults: 5}) '
        "{ metrics { step } } }" % run_id
    )
    rest = requests.get(
        f"{tracking.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
        params={"run_ids": run_id, "metric_key": "m", "max_results": 5},
        timeout=60,
    ).json()
    steps = [m["step"] for m in graphql(tracking, query)["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]]
    assert steps == [str(m["step"]) for m in rest["metrics"]], "the same sampling as the REST route"
    assert len(steps) <= 6
    bad = graphql(tracking, 'query { mlflowGetMetricHistoryBulkInterval(input: {runIds: ["%s"]}) { metrics { key } } }' % run_id)
    assert bad["data"]["mlflowGetMetricHistoryBulkInterval"] is None
    assert bad["errors"] and "metric_key" in bad["errors"][0]


def test_list_artifacts(client: MlflowClient, tracking, experiment_id: str):
    run = client.create_run(experiment_id)
    client.log_text(run.info.run_id, "hello", "dir/a.txt")
    query = (
        'query { mlflowListArtifacts(input: {runId: "%s", path: "dir"}) { rootUri files { path isDir fileSize } } }'
        % run.info.run_id
    )
    body = graphql(tracking, query)
    assert body["errors"] is None, body
    listing = body["data"]["mlflowListArtifacts"]
    assert listing["rootUri"] == run.info.artifact_uri
    assert listing["files"] == [{"path": "dir/a.txt", "isDir": False, "fileSize": "5"}]


def test_search_datasets(client: MlflowClient, tracking, experiment_id: str):
    run_id = client.create_run(experiment_id).info.run_id
    dataset = Dataset(name="train", digest="d1", source_type="local", source="{}")
    client.log_inputs(run_id, [DatasetInput(dataset, tags=[InputTag(key="mlflow.data.context", value="training")])])
    query = (
        'mutation { mlflowSearchDatasets(input: {experimentIds: ["%s"]}) '
        "{ datasetSummaries { experimentId name digest context } } }" % experiment_id
    )
    body = graphql(tracking, query)
    assert body["errors"] is None, body
    assert body["data"]["mlflowSearchDatasets"]["datasetSummaries"] == [
        {"experimentId": experiment_id, "name": "train", "digest": "d1", "context": "training"}
    ]


def test_unset_fields_read_as_proto_defaults(client: MlflowClient, tracking, experiment_id: str):
    # MLflow's resolvers read proto messages, so a field the REST JSON leaves out is its proto
    # default, not null: a directory has no size ("0") and a dataset logged without a context
    # tag has the empty context.
    run_id = client.create_run(experiment_id).info.run_id
    client.log_text(run_id, "hello", "dir/a.txt")
    client.log_inputs(run_id, [DatasetInput(Dataset(name="eval", digest="d2", source_type="local", source="{}"))])
    listing = graphql(
        tracking, 'query { mlflowListArtifacts(input: {runId: "%s"}) { files { path isDir fileSize } } }' % run_id
    )
    assert listing["errors"] is None, listing
    assert listing["data"]["mlflowListArtifacts"]["files"] == [{"path": "dir", "isDir": True, "fileSize": "0"}]
    datasets = graphql(
        tracking,
        'mutation { mlflowSearchDatasets(input: {experimentIds: ["%s"]}) { datasetSummaries { name context } } }'
        % experiment_id,
    )
    assert datasets["errors"] is None, datasets
    assert datasets["data"]["mlflowSearchDatasets"]["datasetSummaries"] == [{"name": "eval", "context": ""}]


def test_errors_are_plain_messages_and_the_field_is_null(tracking):
    body = graphql(tracking, 'query { mlflowGetRun(input: {runId: "%s"}) { run { info { runId } } } }' % uuid.uuid4().hex)
    assert body["data"] == {"mlflowGetRun": None}
    assert isinstance(body["errors"], list) and len(body["errors"]) == 1
    assert isinstance(body["errors"][0], str) and "not found" in body["errors"][0].lower()


def test_batching_too_many_reads_is_refused(tracking):
    roots = " ".join(f'r{i}: test(inputString: "{i}") {{ output }}' for i in range(11))
    body = graphql(tracking, "query { %s }" % roots)
    assert body["data"] is None
    assert body["errors"] == [
        "GraphQL queries should have at most 10 root fields, got 11 root fields. To increase the limit, set the "
        "MLFLOW_SERVER_GRAPHQL_MAX_ROOT_FIELDS environment variable."
    ] or body["errors"][0].startswith("GraphQL queries should have at most 10 root fields, got 11 root fields.")
    ten = " ".join(f'r{i}: test(inputString: "{i}") {{ output }}' for i in range(10))
    assert graphql(tracking, "query { %s }" % ten)["errors"] is None
