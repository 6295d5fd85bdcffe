"""Where the server is and how to authenticate: keyword arguments first, else the environment
variables the `mlflow` client reads, so one set-up serves both."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_URL = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class Settings:
    """Connection settings for one server."""

    url: str
    token: str | None = None
    username: str | None = None
    password: str | None = None
    verify_tls: bool = True
    timeout: float = 30.0
    max_retries: int = 5


def resolve(
    url: str | None = None,
    token: str | None = None,
    *,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> Settings:
    """Settings from arguments, else `CAIRN_URL` / `MLFLOW_TRACKING_URI`, `MLFLOW_TRACKING_TOKEN`,
    `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`, `MLFLOW_TRACKING_INSECURE_TLS`."""
    env = os.environ
    if url is None:
        url = env.get("CAIRN_URL") or env.get("MLFLOW_TRACKING_URI") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Cairn's server URL must be http:// or https://, got {url!r}")
    return Settings(
        url=url.rstrip("/"),
        token=token if token is not None else env.get("MLFLOW_TRACKING_TOKEN"),
        username=env.get("MLFLOW_TRACKING_USERNAME"),
        password=env.get("MLFLOW_TRACKING_PASSWORD"),
        verify_tls=env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() not in ("1", "true"),
        timeout=timeout if timeout is not None else 30.0,
        max_retries=max_retries if max_retries is not None else 5,
    )
