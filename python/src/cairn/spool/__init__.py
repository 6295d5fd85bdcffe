"""The offline spool: MLflow writes that could not reach the server, journaled locally and
replayed in order, exactly once, when it is back (`journal`, `sync`, the `cairn-sync` script)."""
