"""MLflow plugins, registered through entry points (see `pyproject.toml`), so that unchanged
MLflow scripts record Cairn's capture: a run context provider for the tags and a tracking store
for the http(s) schemes that uploads the captured files once the run exists."""
