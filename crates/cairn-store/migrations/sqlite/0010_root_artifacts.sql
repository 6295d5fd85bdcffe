-- Cairn metadata schema, version 10 (SQLite): files uploaded anywhere under the artifact root.
-- MLflow's proxied artifact API accepts any path below `mlflow-artifacts:/`, not only paths
-- inside a run's or logged model's folder; such files are kept here, content-addressed like
-- every other manifest row. `root_pk` is always 0 (there is one artifact root) and keeps this
-- table the same shape as `artifact_files` and `logged_model_files`.

CREATE TABLE root_artifact_files (
    root_pk      INTEGER NOT NULL,
    path         TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    created_time INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (root_pk, path)
) WITHOUT ROWID;

-- Garbage collection asks whether any row still names a blob.
CREATE INDEX root_artifact_files_by_digest ON root_artifact_files (digest);
