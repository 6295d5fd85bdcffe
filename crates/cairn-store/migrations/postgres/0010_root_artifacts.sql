-- Cairn metadata schema, version 10 (PostgreSQL): files uploaded anywhere under the artifact
-- root. MLflow's proxied artifact API accepts any path below `mlflow-artifacts:/`, not only
-- paths inside a run's or logged model's folder; such files are kept here, content-addressed
-- like every other manifest row. `root_pk` is always 0 (there is one artifact root) and keeps
-- this table the same shape as `artifact_files` and `logged_model_files`.

CREATE TABLE root_artifact_files (
    root_pk      BIGINT NOT NULL,
    path         TEXT   NOT NULL,
    digest       TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (root_pk, path)
);

CREATE INDEX root_artifact_files_by_digest ON root_artifact_files (digest);
