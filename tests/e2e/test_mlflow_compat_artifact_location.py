"""A relative `artifact_location` at experiment creation (issue 12, group 6) is resolved as
MLflow's server resolves it: against the server's working directory (here, the server's work
folder), with `file:` kept as a `file://` URI; absolute paths and other schemes are kept."""

from __future__ import annotations

from mlflow.tracking import MlflowClient


def test_relative_locations_resolve_against_the_server_directory(client: MlflowClient, tracking, unique: str):
    cwd = tracking.workdir.resolve()
    cases = {
        "my_location": str(cwd / "my_location"),
        "nested/dir": str(cwd / "nested" / "dir"),
        "file:rel": f"file://{cwd / 'rel'}",
        "/abs/elsewhere": "/abs/elsewhere",
        "s3://bucket/prefix": "s3://bucket/prefix",
    }
    for i, (given, expected) in enumerate(cases.items()):
        experiment_id = client.create_experiment(f"loc-{unique}-{i}", artifact_location=given)
        assert client.get_experiment(experiment_id).artifact_location == expected, given


def test_runs_of_a_relative_location_live_below_it(client: MlflowClient, tracking, unique: str):
    experiment_id = client.create_experiment(f"loc-runs-{unique}", artifact_location="runs_here")
    run = client.create_run(experiment_id)
    expected = tracking.workdir.resolve() / "runs_here" / run.info.run_id / "artifacts"
    assert run.info.artifact_uri == str(expected)
