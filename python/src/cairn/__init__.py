"""Cairn's Python package.

- Installed next to `mlflow`, its plugins record every run's code (commit, branch, uncommitted
  patch, entry point), environment (interpreter, OS, hardware, packages, lock files, selected
  variables) and seeds, and register them as lineage nodes on a Cairn server.
- `Client` is Cairn's native API: lineage registration and questions, predictions, audit.
- `log_dataset` records what a run read, with a real content digest; `seed_everything` seeds
  and records every random number generator; `PredictionLogger` streams served predictions.
"""

from cairn._exceptions import (
    APIError,
    BadRequest,
    CairnError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from cairn.capture.seeds import seed_everything
from cairn.client import Client
from cairn.digest import dataset_digest
from cairn.fluent import log_dataset
from cairn.predictions import PredictionLogger

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "BadRequest",
    "CairnError",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "NotFound",
    "PredictionLogger",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "dataset_digest",
    "log_dataset",
    "seed_everything",
]
