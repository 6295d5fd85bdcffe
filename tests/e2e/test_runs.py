"""Runs through the real client: lifecycle, names, nesting, params and tags."""

import mlflow
import pytest
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"


def test_fluent_run_finishes_and_records_everything(tracking, unique):
    mlflow.set_experiment(f"fluent-run-{unique}")
    with mlflow.start_run(run_name="train") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 3, "optimizer": "adam"})
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"team": "vision"})
        mlflow.log_metric("loss", 0.5, step=0)
        mlflow.log_metrics({"loss": 0.25, "acc": 0.9}, step=1)
        run_id = run.info.run_id

    got = mlflow.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "train"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert got.info.lifecycle_stage == "active"
    assert got.data.params == {"lr": "0.01", "epochs": "3", "optimizer": "adam"}
    assert got.data.tags["stage"] == "dev"
    assert got.data.tags["team"] == "vision"
    assert got.data.tags[RUN_NAME_TAG] == "train"
    assert got.data.metrics == {"loss": 0.25, "acc": 0.9}


def test_exception_in_run_marks_it_failed(tracking, unique):
    mlflow.set_experiment(f"failed-run-{unique}")
    with pytest.raises(RuntimeError):
        with mlflow.start_run() as run:
            raise RuntimeError("training diverged")
    assert mlflow.get_run(run.info.run_id).info.status == "FAILED"


def test_client_create_run_with_start_time_name_and_tags(client, experiment_id):
    run = client.create_run(experiment_id, start_time=1_700_000_000_000, tags={"k": "v"}, run_name="explicit")
    assert run.info.status == "RUNNING"
    assert run.info.start_time == 1_700_000_000_000
    assert run.info.end_time is None
    assert run.info.run_name == "explicit"
    assert run.info.experiment_id == experiment_id
    assert run.data.tags["k"] == "v"
    assert run.data.tags[RUN_NAME_TAG] == "explicit"

    fetched = client.get_run(run.info.run_id)
    assert fetched.info.run_id == run.info.run_id
    assert fetched.info.artifact_uri == run.info.artifact_uri


def test_server_generates_a_run_name_when_none_is_given(client, experiment_id):
    run = client.create_run(experiment_id)
    assert run.info.run_name
    assert client.get_run(run.info.run_id).data.tags[RUN_NAME_TAG] == run.info.run_name


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_set_terminated_with_status_and_end_time(client, experiment_id, status):
    run = client.create_run(experiment_id, start_time=1000)
    client.set_terminated(run.info.run_id, status=status, end_time=5000)
    info = client.get_run(run.info.run_id).info
    assert info.status == status
    assert info.end_time == 5000


def test_update_run_status_and_name(client, experiment_id):
    run = client.create_run(experiment_id, run_name="before")
    client.update_run(run.info.run_id, status=RunStatus.to_string(RunStatus.SCHEDULED), name="after")
    got = client.get_run(run.info.run_id)
    assert got.info.status == "SCHEDULED"
    assert got.info.run_name == "after"
    # The reserved tag mirrors the name, so searches on either agree.
    assert got.data.tags[RUN_NAME_TAG] == "after"


def test_nested_runs_carry_the_parent_tag(tracking, unique):
    exp = mlflow.set_experiment(f"nested-{unique}")
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_param("depth", 1)
    child_run = mlflow.get_run(child.info.run_id)
    assert child_run.data.tags[PARENT_TAG] == parent.info.run_id
    assert PARENT_TAG not in mlflow.get_run(parent.info.run_id).data.tags

    found = mlflow.search_runs(
        experiment_ids=[exp.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
        output_format="list",
    )
    assert [r.info.run_id for r in found] == [child.info.run_id]


def test_client_parent_run_id(client, experiment_id):
    parent = client.create_run(experiment_id)
    child = client.create_run(experiment_id, tags={PARENT_TAG: parent.info.run_id})
    assert client.get_run(child.info.run_id).data.tags[PARENT_TAG] == parent.info.run_id


def test_params_are_immutable_but_relogging_the_same_value_is_fine(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_param(run_id, "alpha", "0.5")
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "alpha", "0.7")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {"alpha": "0.5"}


def test_set_overwrite_and_delete_tags(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.set_tag(run_id, "color", "red")
    client.set_tag(run_id, "color", "blue")
    client.set_tag(run_id, "unicode", "héllo ✓ 日本")
    tags = client.get_run(run_id).data.tags
    assert tags["color"] == "blue"
    assert tags["unicode"] == "héllo ✓ 日本"

    client.delete_tag(run_id, "color")
    assert "color" not in client.get_run(run_id).data.tags

    with pytest.raises(MlflowException) as e:
        client.delete_tag(run_id, "color")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_long_values_are_truncated_like_mlflow(client, experiment_id):
    # MLflow truncates over-long param and tag values (MLFLOW_TRUNCATE_LONG_VALUES, on by
    # default) instead of rejecting them.
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "long", "p" * 6001)
    client.set_tag(run_id, "long", "t" * 8001)
    data = client.get_run(run_id).data
    assert data.params["long"] == "p" * 6000
    assert data.tags["long"] == "t" * 8000


def test_delete_and_restore_run(client, experiment_id):
    run_id = client.create_run(experiment_id).info.run_id
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    # A deleted run refuses new data until restored.
    with pytest.raises(MlflowException) as e:
        client.log_param(run_id, "late", "1")
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"

    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    client.log_param(run_id, "late", "1")
    assert client.get_run(run_id).data.params == {"late": "1"}


def test_runs_in_a_deleted_experiment_cannot_be_created(client, experiment_id):
    client.delete_experiment(experiment_id)
    with pytest.raises(MlflowException) as e:
        client.create_run(experiment_id)
    assert e.value.error_code == "INVALID_PARAMETER_VALUE"
