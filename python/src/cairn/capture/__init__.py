"""Automatic capture of what a run needs to be reproduced: its code, its environment, its seeds.

`session.capture()` is what the MLflow run context provider calls at every `start_run`; each
part is computed by a function that takes what it needs and returns plain data, so they can be
tested one by one.
"""
