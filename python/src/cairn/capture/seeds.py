"""`seed_everything`: one call that seeds every random number generator a training script is
likely to use, and remembers what it did so the run records it."""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import threading

# The interpreter's hash seed is fixed at start-up, so the value then is the one that holds.
STARTUP_HASH_SEED = os.environ.get("PYTHONHASHSEED", "unset")
_lock = threading.Lock()
_last: dict[str, str] = {}


def seed_everything(seed: int, *, deterministic: bool = False) -> dict[str, str]:
    """Seeds `random`, NumPy, PyTorch (CPU and every CUDA device) and TensorFlow, each when it is
    installed, and returns the tags that record it (also set on the active MLflow run, or on the
    next one started).

    `PYTHONHASHSEED` cannot change the hashing of the running interpreter; it is set for child
    processes and its value at start-up is recorded. With `deterministic`, PyTorch is asked for
    deterministic algorithms as well.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seeded = ["random"]
    random.seed(seed)
    if importlib.util.find_spec("numpy") is not None:
        np = importlib.import_module("numpy")
        np.random.seed(seed)
        seeded.append("numpy")
    if importlib.util.find_spec("torch") is not None:
        torch = importlib.import_module("torch")
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        if deterministic:
            torch.use_deterministic_algorithms(True)
        seeded.append("torch")
    if importlib.util.find_spec("tensorflow") is not None:
        tf = importlib.import_module("tensorflow")
        tf.random.set_seed(seed)
        seeded.append("tensorflow")
    os.environ["PYTHONHASHSEED"] = str(seed)
    tags = {
        "cairn.seed": str(seed),
        "cairn.seed.libraries": ",".join(seeded),
        "cairn.seed.pythonhashseed": STARTUP_HASH_SEED,
    }
    with _lock:
        _last.clear()
        _last.update(tags)
    _tag_active_run(tags)
    return tags


def seed_tags() -> dict[str, str]:
    """The tags of the last `seed_everything` call, for runs started after it."""
    with _lock:
        return dict(_last)


def _tag_active_run(tags: dict[str, str]) -> None:
    import mlflow

    run = mlflow.active_run()
    if run is not None:
        mlflow.set_tags(tags)
