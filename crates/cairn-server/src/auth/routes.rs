//! The access rule of every route, as data: which permission a request needs and how to find
//! the resource it is about. [`rule_for`] looks a request up by method and matched route;
//! a route without an entry is refused when access control is on (and a test fails the build).
//!
//! MLflow's routes are listed once under `/mlflow/...`: [`route_key`] folds the four prefixes
//! they are served at (`/api/2.0`, `/ajax-api/2.0`, `/api/3.0`, `/ajax-api/3.0`) into that.
//! Adding a route is adding one line here.

use cairn_core::auth::Permission::{self, Edit, Manage, Read};

/// Where the resource a request is about is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locate {
    /// `experiment_id` in the query or JSON body.
    ExperimentId,
    /// `experiment_ids` (a list) in the query or body: every one must allow the need.
    ExperimentIds,
    /// `experiment_name` in the query: the experiment with that name.
    ExperimentName,
    /// `run_id` (or `run_uuid`) in the query or body: the run's experiment.
    RunId,
    /// A log-batch's run, as [`Locate::RunId`], found by the handler's own typed reader so the
    /// body is read once on the ingest hot path.
    Batch,
    /// `run_ids` (a list) in the query: every run's experiment must allow the need.
    RunIds,
    /// `run_id` repeated in the query: every run's experiment must allow the need.
    RunIdRepeated,
    /// The `{run_id}` path segment: the run's experiment.
    RunPath,
    /// `name` in the query or body: a registered model.
    ModelName,
    /// A new model version: `name` (the registered model) needs the level; the run, logged
    /// model or other registered model whose files it takes (`run_id`, `model_id`, a
    /// `models:/…` source) needs READ, or a version could copy out files its creator cannot read.
    NewVersion,
    /// The `{name}` path segment: a registered model.
    ModelPath,
    /// The `{model_id}` path segment, or `model_id` in the body: the logged model's experiment.
    LoggedModel,
    /// An artifact path (`{*path}`, or `path` in the query) whose first segment is the
    /// experiment id, as the default artifact root lays runs out: `<exp>/<run>/artifacts/…`.
    ArtifactPath,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, signed in or not (liveness, version, server info).
    Public,
    /// Any signed-in principal with a scope that allows reading.
    SignedIn,
    /// Any signed-in principal whose token (if any) may write; the handler needs no resource.
    SignedInWrite,
    /// Admins only.
    Admin,
    /// `Permission` on the resource found by `Locate`.
    Need(Permission, Locate),
    /// Creating an experiment (`true`) or a registered model (`false`): any principal that may
    /// write; the creator is granted `MANAGE` on what was created.
    Create(Creates),
    /// A search: any reader; the answer is filtered to what the caller may read.
    Search(Searches),
    /// An access-control route whose handler decides (self or admin, MANAGE on a resource).
    Handler,
    /// Posting predictions: a writer, or a `predictions:` token for the deployment named.
    Predictions,
    /// A lineage answer: any reader; runs, logged models and model versions the caller may not
    /// read are redacted to placeholders.
    Lineage,
}

/// What a [`Rule::Create`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creates {
    Experiment,
    RegisteredModel,
}

/// What a [`Rule::Search`] answers with, and so how its answer is filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Searches {
    /// `experiments`: each by `experiment_id`.
    Experiments,
    /// `registered_models`: each by `name`.
    RegisteredModels,
    /// `model_versions`: each by `name`.
    ModelVersions,
}

/// One route's rule.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub method: &'static str,
    pub path: &'static str,
    pub rule: Rule,
}

const fn r(method: &'static str, path: &'static str, rule: Rule) -> Entry {
    Entry { method, path, rule }
}

use Locate::*;
use Rule::*;

/// Every route. Reads sent as `POST` (searches, bulk history) are reads; writes need EDIT,
/// deletes MANAGE.
pub const ROUTES: &[Entry] = &[
    // Liveness and version: load balancers and clients probe them before signing in.
    r("GET", "/health", Public),
    // Readiness, probed by load balancers without credentials.
    r("GET", "/ready", Public),
    r("GET", "/version", Public),
    r("GET", "/mlflow/server-info", Public),
    // Experiments.
    r("POST", "/mlflow/experiments/create", Create(Creates::Experiment)),
    r("GET", "/mlflow/experiments/get", Need(Read, ExperimentId)),
    r("GET", "/mlflow/experiments/get-by-name", Need(Read, ExperimentName)),
    r("GET", "/mlflow/experiments/search", Search(Searches::Experiments)),
    r("POST", "/mlflow/experiments/search", Search(Searches::Experiments)),
    r("POST", "/mlflow/experiments/update", Need(Edit, ExperimentId)),
    r("POST", "/mlflow/experiments/delete", Need(Manage, ExperimentId)),
    r("POST", "/mlflow/experiments/restore", Need(Manage, ExperimentId)),
    r("POST", "/mlflow/experiments/set-experiment-tag", Need(Edit, ExperimentId)),
    r("POST", "/mlflow/experiments/delete-experiment-tag", Need(Edit, ExperimentId)),
    // Runs: their experiment's permission.
    r("POST", "/mlflow/runs/create", Need(Edit, ExperimentId)),
    // A run under a client-chosen id (the Python package's offline sync): as runs/create.
    r("PUT", "/api/cairn/v1/runs/{run_id}", Need(Edit, ExperimentId)),
    r("GET", "/api/cairn/v1/experiments/run-counts", Need(Read, ExperimentIds)),
    r("GET", "/mlflow/runs/get", Need(Read, RunId)),
    r("POST", "/mlflow/runs/update", Need(Edit, RunId)),
    r("POST", "/mlflow/runs/delete", Need(Manage, RunId)),
    r("POST", "/mlflow/runs/restore", Need(Manage, RunId)),
    r("POST", "/mlflow/runs/log-metric", Need(Edit, RunId)),
    r("POST", "/mlflow/runs/log-parameter", Need(Edit, RunId)),
    r("POST", "/mlflow/runs/set-tag", Need(Edit, RunId)),
    r("POST", "/mlflow/runs/delete-tag", Need(Edit, RunId)),
    r("POST", "/mlflow/runs/log-batch", Need(Edit, Batch)),
    r("POST", "/mlflow/runs/log-inputs", Need(Edit, RunId)),
    r("POST", "/mlflow/runs/outputs", Need(Edit, RunId)),
    r("POST", "/mlflow/runs/search", Need(Read, ExperimentIds)),
    r("GET", "/mlflow/metrics/get-history", Need(Read, RunId)),
    r("GET", "/mlflow/metrics/get-history-bulk-interval", Need(Read, RunIds)),
    // The tracking server's downloads, named by query parameters as MLflow's UI sends them.
    r("GET", "/get-artifact", Need(Read, RunId)),
    r("GET", "/model-versions/get-artifact", Need(Read, ModelName)),
    r("POST", "/mlflow/experiments/search-datasets", Need(Read, ExperimentIds)),
    // MLflow's UI upload names its run in the query of a POST whose body is the file, which the
    // checker does not read; until it does, only admins may use it (Cairn's UI does not).
    r("POST", "/mlflow/upload-artifact", Admin),
    // GraphQL reaches experiments, runs and model versions in one query; field-level checks are
    // not built, so with access control on it is for admins (Cairn's UI uses REST only).
    r("GET", "/graphql", Admin),
    r("POST", "/graphql", Admin),
    // Logged models: their experiment's permission.
    r("POST", "/mlflow/logged-models", Need(Edit, ExperimentId)),
    // A logged model under a client-chosen id (the Python package's offline sync): as create.
    r("PUT", "/api/cairn/v1/logged-models/{model_id}", Need(Edit, ExperimentId)),
    r("POST", "/mlflow/logged-models/search", Need(Read, ExperimentIds)),
    r("GET", "/mlflow/logged-models/{model_id}", Need(Read, LoggedModel)),
    r("PATCH", "/mlflow/logged-models/{model_id}", Need(Edit, LoggedModel)),
    r("DELETE", "/mlflow/logged-models/{model_id}", Need(Manage, LoggedModel)),
    r("PATCH", "/mlflow/logged-models/{model_id}/tags", Need(Edit, LoggedModel)),
    r("DELETE", "/mlflow/logged-models/{model_id}/tags/{tag_key}", Need(Edit, LoggedModel)),
    r("POST", "/mlflow/logged-models/{model_id}/params", Need(Edit, LoggedModel)),
    r("GET", "/mlflow/logged-models/{model_id}/artifacts/directories", Need(Read, LoggedModel)),
    // The registry: the registered model's permission.
    r("POST", "/mlflow/registered-models/create", Create(Creates::RegisteredModel)),
    r("GET", "/mlflow/registered-models/get", Need(Read, ModelName)),
    r("POST", "/mlflow/registered-models/rename", Need(Manage, ModelName)),
    r("PATCH", "/mlflow/registered-models/update", Need(Edit, ModelName)),
    r("DELETE", "/mlflow/registered-models/delete", Need(Manage, ModelName)),
    r("GET", "/mlflow/registered-models/search", Search(Searches::RegisteredModels)),
    r("POST", "/mlflow/registered-models/set-tag", Need(Edit, ModelName)),
    r("DELETE", "/mlflow/registered-models/delete-tag", Need(Edit, ModelName)),
    r("GET", "/mlflow/registered-models/get-latest-versions", Need(Read, ModelName)),
    r("POST", "/mlflow/registered-models/get-latest-versions", Need(Read, ModelName)),
    r("POST", "/mlflow/registered-models/alias", Need(Edit, ModelName)),
    r("DELETE", "/mlflow/registered-models/alias", Need(Edit, ModelName)),
    r("GET", "/mlflow/registered-models/alias", Need(Read, ModelName)),
    r("POST", "/mlflow/model-versions/create", Need(Edit, NewVersion)),
    r("GET", "/mlflow/model-versions/get", Need(Read, ModelName)),
    r("PATCH", "/mlflow/model-versions/update", Need(Edit, ModelName)),
    r("DELETE", "/mlflow/model-versions/delete", Need(Manage, ModelName)),
    r("GET", "/mlflow/model-versions/search", Search(Searches::ModelVersions)),
    r("POST", "/mlflow/model-versions/set-tag", Need(Edit, ModelName)),
    r("DELETE", "/mlflow/model-versions/delete-tag", Need(Edit, ModelName)),
    r("GET", "/mlflow/model-versions/get-download-uri", Need(Read, ModelName)),
    r("POST", "/mlflow/model-versions/transition-stage", Need(Edit, ModelName)),
    // Proxied artifacts: the run's experiment, from the path.
    r("GET", "/mlflow-artifacts/artifacts", Need(Read, ArtifactPath)),
    r("GET", "/mlflow-artifacts/artifacts/{*path}", Need(Read, ArtifactPath)),
    r("PUT", "/mlflow-artifacts/artifacts/{*path}", Need(Edit, ArtifactPath)),
    r("DELETE", "/mlflow-artifacts/artifacts/{*path}", Need(Manage, ArtifactPath)),
    r("POST", "/mlflow-artifacts/mpu/create/{*path}", Need(Edit, ArtifactPath)),
    r("POST", "/mlflow-artifacts/mpu/complete/{*path}", Need(Edit, ArtifactPath)),
    r("POST", "/mlflow-artifacts/mpu/abort/{*path}", Need(Edit, ArtifactPath)),
    // A part's upload id was handed out by `mpu/create`, which checked EDIT on the path.
    r("PUT", "/mlflow-artifacts/mpu/parts/{upload_id}/{part_number}", SignedInWrite),
    // The access-control API (its handlers check self-or-admin and MANAGE themselves).
    r("POST", "/mlflow/users/create", Admin),
    r("GET", "/mlflow/users/get", Handler),
    r("GET", "/mlflow/users/current", SignedIn),
    r("GET", "/mlflow/users/list", Admin),
    r("PATCH", "/mlflow/users/update-password", Handler),
    r("PATCH", "/mlflow/users/update-admin", Admin),
    r("DELETE", "/mlflow/users/delete", Admin),
    r("POST", "/mlflow/users/permissions/grant", Handler),
    r("POST", "/mlflow/users/permissions/revoke", Handler),
    r("GET", "/mlflow/users/permissions/get", Handler),
    r("POST", "/mlflow/roles/create", Admin),
    r("GET", "/mlflow/roles/get", Admin),
    r("GET", "/mlflow/roles/list", Admin),
    r("PATCH", "/mlflow/roles/update", Admin),
    r("DELETE", "/mlflow/roles/delete", Admin),
    r("POST", "/mlflow/roles/permissions/add", Admin),
    r("DELETE", "/mlflow/roles/permissions/remove", Admin),
    r("GET", "/mlflow/roles/permissions/list", Admin),
    r("PATCH", "/mlflow/roles/permissions/update", Admin),
    r("POST", "/mlflow/roles/assign", Admin),
    r("DELETE", "/mlflow/roles/unassign", Admin),
    r("GET", "/mlflow/users/roles/list", Handler),
    r("GET", "/mlflow/roles/users/list", Admin),
    // Native routes.
    r("GET", "/api/cairn/v1/audit/events", Admin),
    r("POST", "/api/cairn/v1/audit/verify", Admin),
    r("GET", "/api/cairn/v1/runs/{run_id}/artifacts", Need(Read, RunPath)),
    r("GET", "/api/cairn/v1/models/{name}/history", Need(Read, ModelPath)),
    r("GET", "/api/cairn/v1/models/{name}/aliases/{alias}", Need(Read, ModelPath)),
    r("GET", "/api/cairn/v1/metrics/sampled", Need(Read, RunIdRepeated)),
    r("GET", "/api/cairn/v1/openapi.json", Public),
    // Who the caller is: answered without credentials too (`user: null`), so the web UI can ask
    // before signing in; wrong credentials are still refused by authentication.
    r("GET", "/api/cairn/v1/session", Public),
    // Lineage answers are for any reader, redacted node by node (`Lineage`): traversals, a
    // node, a diff, an export in each format, a model version's completeness and a prediction's
    // trace. Recording into the graph is for any writer (nodes name things, they do not change
    // them).
    r("PUT", "/api/cairn/v1/lineage/nodes/{kind}/{*key}", SignedInWrite),
    r("GET", "/api/cairn/v1/lineage/nodes/{kind}/{*key}", Lineage),
    r("POST", "/api/cairn/v1/lineage/slices", SignedInWrite),
    r("POST", "/api/cairn/v1/lineage/edges", SignedInWrite),
    r("POST", "/api/cairn/v1/deployments/{name}", SignedInWrite),
    r("GET", "/api/cairn/v1/lineage/upstream", Lineage),
    r("GET", "/api/cairn/v1/lineage/downstream", Lineage),
    r("GET", "/api/cairn/v1/lineage/diff", Lineage),
    r("GET", "/api/cairn/v1/lineage/export", Lineage),
    // Counts over the whole graph, and the incomplete versions by name: redacted like a graph.
    r("GET", "/api/cairn/v1/lineage/health", Lineage),
    r("GET", "/api/cairn/v1/lineage/completeness", Lineage),
    r("POST", "/api/cairn/v1/predictions", Predictions),
    r("GET", "/api/cairn/v1/predictions/{id}/trace", Lineage),
    r("POST", "/api/v1/lineage", SignedInWrite),
    // The registry and lineage views of the web UI. A version's files and its policy verdict
    // are the model's (the handler hides the values a verdict takes from a source run the
    // caller may not read); the deployments' history names model versions of every model, so
    // it is redacted like a graph.
    r("GET", "/api/cairn/v1/models/{name}/versions/{version}/files", Need(Read, ModelPath)),
    r("GET", "/api/cairn/v1/models/{name}/versions/{version}/policy", Need(Read, ModelPath)),
    r("GET", "/api/cairn/v1/deployments", Lineage),
];

/// The key a matched route is listed under: MLflow's versioned prefixes folded away.
pub fn route_key(matched: &str) -> &str {
    for prefix in ["/api/2.0", "/ajax-api/2.0", "/api/3.0", "/ajax-api/3.0"] {
        if let Some(rest) = matched.strip_prefix(prefix)
            && rest.starts_with("/mlflow")
        {
            return rest;
        }
    }
    matched
}

/// The rule for `method` on the matched route `matched`; `HEAD` follows `GET`.
pub fn rule_for(method: &str, matched: &str) -> Option<Rule> {
    let method = if method == "HEAD" { "GET" } else { method };
    let key = route_key(matched);
    ROUTES.iter().find(|e| e.method == method && e.path == key).map(|e| e.rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_fold_and_head_follows_get() {
        assert_eq!(route_key("/api/2.0/mlflow/runs/create"), "/mlflow/runs/create");
        assert_eq!(route_key("/ajax-api/3.0/mlflow/users/permissions/grant"), "/mlflow/users/permissions/grant");
        assert_eq!(route_key("/api/2.0/mlflow-artifacts/artifacts"), "/mlflow-artifacts/artifacts");
        assert_eq!(route_key("/api/cairn/v1/audit/events"), "/api/cairn/v1/audit/events");
        assert_eq!(rule_for("HEAD", "/health"), Some(Public));
        assert_eq!(rule_for("GET", "/api/2.0/mlflow/runs/get"), Some(Need(Read, RunId)));
        assert_eq!(rule_for("DELETE", "/api/2.0/mlflow/runs/get"), None);
    }

    #[test]
    fn no_route_is_listed_twice() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[..i].iter().any(|b| b.method == a.method && b.path == a.path),
                "{} {} is listed twice",
                a.method,
                a.path
            );
        }
    }
}
