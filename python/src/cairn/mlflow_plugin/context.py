"""The `mlflow.run_context_provider` plugin: Cairn's capture as tags of every run started with
MLflow's fluent API."""

from __future__ import annotations

from mlflow.tracking.context.abstract_context import RunContextProvider

from cairn.capture import session


class CairnRunContextProvider(RunContextProvider):
    """Adds code, environment and seed tags. MLflow builds its providers at import, so the
    environment capture starts then, in the background, off the `start_run` path."""

    def __init__(self) -> None:
        if not session.disabled():
            session.prewarm()

    def in_context(self) -> bool:
        return not session.disabled()

    def tags(self) -> dict[str, str]:
        return session.capture_tags()
