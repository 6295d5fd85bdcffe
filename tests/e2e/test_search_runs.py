"""`search_runs` through the real client: MLflow's filter grammar, ordering, paging, view types.

One small, fixed data set per server; each test names the runs it expects by their names.
"""

import uuid
from dataclasses import dataclass

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

BASE_TIME = 1_700_000_000_000

# name: (metrics, params, tags, final status); start times increase in this order.
RUNS = {
    "alpha": ({"acc": 0.9, "loss": 0.3, "f1-score": 0.5}, {"lr": "0.1", "model": "cnn"}, {"team": "vision"}, "FINISHED"),
    "beta": ({"acc": 0.7, "loss": 0.5}, {"lr": "0.01", "model": "rnn"}, {"team": "nlp"}, "FINISHED"),
    "gamma": ({"acc": 0.8}, {"lr": "0.1", "model": "cnn"}, {"team": "vision", "note": "日本語"}, "FAILED"),
    "delta": ({}, {"model": "mlp"}, {}, "RUNNING"),
    "Alpha-2": ({"acc": 0.95, "loss": 0.1}, {"lr": "0.001", "model": "CNN"}, {"team": "Vision"}, "KILLED"),
}
DELETED = "epsilon"


@dataclass
class DataSet:
    client: MlflowClient
    experiment_id: str
    other_experiment_id: str
    ids: dict  # run name -> run id
    names: dict  # run id -> run name

    def search(self, filter_string="", **kwargs):
        """Names of the matching runs, in the server's order."""
        runs = self.client.search_runs([self.experiment_id], filter_string, **kwargs)
        return [self.names[r.info.run_id] for r in runs]

    def search_set(self, filter_string="", **kwargs):
        return set(self.search(filter_string, **kwargs))


@pytest.fixture(scope="module")
def data(server) -> DataSet:
    client = MlflowClient(tracking_uri=server.url)
    exp_id = client.create_experiment(f"search-{uuid.uuid4().hex[:10]}")
    other = client.create_experiment(f"search-other-{uuid.uuid4().hex[:10]}")
    ids = {}
    for i, (name, (metrics, params, tags, status)) in enumerate([*RUNS.items(), (DELETED, ({"acc": 0.99}, {}, {}, "FINISHED"))]):
        start = BASE_TIME + i * 1000
        run = client.create_run(exp_id, start_time=start, run_name=name)
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, start, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if status != "RUNNING":
            client.set_terminated(run_id, status=status, end_time=start + 500)
        ids[name] = run_id
    client.delete_run(ids[DELETED])
    client.create_run(other, run_name="elsewhere", start_time=BASE_TIME)
    return DataSet(client, exp_id, other, ids, {v: k for k, v in ids.items()})


ACTIVE = set(RUNS)


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", ACTIVE),
        ("metrics.acc > 0.75", {"alpha", "gamma", "Alpha-2"}),
        ("metrics.acc >= 0.8 AND params.model = 'cnn'", {"alpha", "gamma"}),
        ("metrics.acc < 0.8", {"beta"}),
        ("metrics.acc <= 0.8", {"beta", "gamma"}),
        ("metrics.acc != 0.9", {"beta", "gamma", "Alpha-2"}),
        ("metrics.loss = 0.5", {"beta"}),
        ("metrics.`f1-score` > 0", {"alpha"}),
        ("metric.acc > 0.9", {"Alpha-2"}),
        ("params.lr = '0.1'", {"alpha", "gamma"}),
        ('params.lr = "0.01"', {"beta"}),
        ("params.model != 'cnn'", {"beta", "delta", "Alpha-2"}),
        ("params.model LIKE 'c%'", {"alpha", "gamma"}),
        ("params.model ILIKE 'c%'", {"alpha", "gamma", "Alpha-2"}),
        ("param.lr = '0.001'", {"Alpha-2"}),
        ("tags.team = 'vision'", {"alpha", "gamma"}),
        ("tags.team LIKE 'vis%'", {"alpha", "gamma"}),
        ("tags.team ILIKE 'VIS%'", {"alpha", "gamma", "Alpha-2"}),
        ("tags.team != 'vision'", {"beta", "Alpha-2"}),
        ("tags.note = '日本語'", {"gamma"}),
        ("tags.`mlflow.runName` = 'beta'", {"beta"}),
        ("attributes.run_name = 'beta'", {"beta"}),
        ("run_name LIKE 'alpha%'", {"alpha"}),
        ("attributes.run_name ILIKE 'alpha%'", {"alpha", "Alpha-2"}),
        ("attributes.status = 'FAILED'", {"gamma"}),
        ("attributes.status != 'FINISHED'", {"gamma", "delta", "Alpha-2"}),
        (f"attributes.start_time >= {BASE_TIME + 2000}", {"gamma", "delta", "Alpha-2"}),
        (f"attributes.start_time < {BASE_TIME + 1000}", {"alpha"}),
        (f"attributes.end_time > {BASE_TIME + 2000}", {"gamma", "Alpha-2"}),
        ("attributes.user_id = 'no-such-user'", set()),
        ("metrics.acc > 0.5 AND params.lr = '0.1' AND tags.team = 'vision' AND status = 'FINISHED'", {"alpha"}),
        ("metrics.missing > 0", set()),
        ("params.model = 'cnn' AND params.model = 'rnn'", set()),
    ],
)
def test_filters(data, filter_string, expected):
    assert data.search_set(filter_string) == expected


def test_run_id_in_and_not_in(data):
    a, b = data.ids["alpha"], data.ids["beta"]
    assert data.search_set(f"attributes.run_id IN ('{a}', '{b}')") == {"alpha", "beta"}
    assert data.search_set(f"run_id = '{a}'") == {"alpha"}
    assert data.search_set(f"attributes.run_id NOT IN ('{a}', '{b}')") == ACTIVE - {"alpha", "beta"}


def test_artifact_uri_filter(data):
    uri = data.client.get_run(data.ids["beta"]).info.artifact_uri
    assert data.search_set(f"attributes.artifact_uri = '{uri}'") == {"beta"}


def test_default_order_is_newest_start_time_first(data):
    assert data.search() == ["Alpha-2", "delta", "gamma", "beta", "alpha"]


def test_order_by_metric_puts_missing_values_last_both_ways(data):
    assert data.search(order_by=["metrics.loss ASC"]) == ["Alpha-2", "alpha", "beta", "delta", "gamma"]
    # Runs without the metric stay last when descending too; among them the default order
    # (newest start first) breaks the tie.
    assert data.search(order_by=["metrics.loss DESC"]) == ["beta", "alpha", "Alpha-2", "delta", "gamma"]


def test_order_by_several_keys(data):
    got = data.search(order_by=["params.lr DESC", "metrics.acc ASC"])
    # lr values compare as strings: '0.1' > '0.01' > '0.001'; delta has no lr and goes last.
    assert got == ["gamma", "alpha", "beta", "Alpha-2", "delta"]
    got = data.search(order_by=["tags.team ASC", "attributes.start_time DESC"])
    assert got == ["Alpha-2", "beta", "gamma", "alpha", "delta"]


def test_order_by_attributes(data):
    assert data.search(order_by=["attributes.start_time ASC"]) == ["alpha", "beta", "gamma", "delta", "Alpha-2"]
    assert data.search(order_by=["run_name ASC"]) == ["Alpha-2", "alpha", "beta", "delta", "gamma"]
    assert data.search(order_by=["attributes.status ASC", "run_name DESC"]) == [
        "gamma", "beta", "alpha", "Alpha-2", "delta"
    ]


def test_pagination_visits_every_run_once(data):
    seen, token, pages = [], None, 0
    while True:
        page = data.client.search_runs(
            [data.experiment_id], "", max_results=2, order_by=["attributes.start_time ASC"], page_token=token
        )
        assert len(page) <= 2
        seen += [data.names[r.info.run_id] for r in page]
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == ["alpha", "beta", "gamma", "delta", "Alpha-2"]
    assert pages == 3


def test_pagination_with_filter_and_metric_order(data):
    first = data.client.search_runs([data.experiment_id], "metrics.acc > 0", max_results=2, order_by=["metrics.acc DESC"])
    assert [data.names[r.info.run_id] for r in first] == ["Alpha-2", "alpha"]
    second = data.client.search_runs(
        [data.experiment_id], "metrics.acc > 0", max_results=2, order_by=["metrics.acc DESC"], page_token=first.token
    )
    assert [data.names[r.info.run_id] for r in second] == ["gamma", "beta"]
    assert not second.token


def test_run_view_types(data):
    assert data.search_set(run_view_type=ViewType.ACTIVE_ONLY) == ACTIVE
    assert data.search_set(run_view_type=ViewType.DELETED_ONLY) == {DELETED}
    assert data.search_set(run_view_type=ViewType.ALL) == ACTIVE | {DELETED}
    assert data.search_set("metrics.acc > 0.98", run_view_type=ViewType.ALL) == {DELETED}


def test_search_across_experiments(data):
    runs = data.client.search_runs([data.experiment_id, data.other_experiment_id], "attributes.run_name = 'elsewhere'")
    assert [r.info.experiment_id for r in runs] == [data.other_experiment_id]
    both = data.client.search_runs([data.experiment_id, data.other_experiment_id])
    assert len(both) == len(RUNS) + 1


def test_results_carry_full_run_data(data):
    [run] = data.client.search_runs([data.experiment_id], "attributes.run_name = 'alpha'")
    assert run.data.metrics == {"acc": 0.9, "loss": 0.3, "f1-score": 0.5}
    assert run.data.params == {"lr": "0.1", "model": "cnn"}
    assert run.data.tags["team"] == "vision"
    assert run.info.status == "FINISHED"
    assert run.info.start_time == BASE_TIME
    assert run.info.end_time == BASE_TIME + 500


def test_fluent_search_runs_dataframe(data, tracking):
    df = mlflow.search_runs([data.experiment_id], "params.model = 'cnn'", order_by=["metrics.acc DESC"])
    assert list(df["tags.mlflow.runName"]) == ["alpha", "gamma"]
    assert list(df["metrics.acc"]) == [0.9, 0.8]


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.acc >>> 1",
        "foo.bar = 1",
        "params.model = cnn",
        "metrics.acc = 'text'",
        "metrics.acc > 0.5 OR params.lr = '0.1'",
        "attributes.unknown = 'x'",
        "params.model LIKE",
        "tags.team = 'unterminated",
        # MLflow allows IN only on run_id.
        "params.model IN ('rnn', 'mlp')",
        "attributes.status IN ('KILLED', 'RUNNING')",
    ],
)
def test_bad_filters_are_invalid_parameter_value(data, bad):
    with pytest.raises(MlflowException) as e:
        data.client.search_runs([data.experiment_id], bad)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("bad", ["metrics.acc DESC; DROP TABLE runs", "nonsense.key ASC", "metrics.acc SIDEWAYS"])
def test_bad_order_by_is_invalid_parameter_value(data, bad):
    with pytest.raises(MlflowException) as e:
        data.client.search_runs([data.experiment_id], "", order_by=[bad])
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    "hostile",
    [
        "tags.x = '; DROP TABLE runs; --'",
        "tags.team = 'vision'' OR ''1''=''1'",
        "params.model = \"' OR '1'='1\"",
        "params.`model'; DELETE FROM params; --` = 'x'",
        "tags.team LIKE '%'' ; DROP TABLE experiments; --'",
        "attributes.run_name = 'alpha\\'; --'",
        "tags.note = '\u0000'",
        "tags.note IN ('日本語''); DROP TABLE runs; --')",
        "tags.`mlflow.runName` = 'Robert\"); DROP TABLE runs;--'",
    ],
)
def test_hostile_filters_match_nothing_and_harm_nothing(data, hostile):
    try:
        assert data.search_set(hostile) == set()
    except MlflowException as e:
        # A string MLflow's grammar rejects is a clean 400, never a server error.
        assert e.error_code == "INVALID_PARAMETER_VALUE"
    # The data set is intact afterwards.
    assert data.search_set("") == ACTIVE
    assert data.search_set("params.model = 'cnn'") == {"alpha", "gamma"}
    assert data.client.get_run(data.ids["alpha"]).data.params == {"lr": "0.1", "model": "cnn"}
