//! The model registry on both backends: models and versions, stages, aliases and their history
//! (also after renames and deletion), pinned files, searches, and the audit log's view of it all.

use std::sync::Arc;
use std::time::Duration;

use cairn_core::Error;
use cairn_core::artifacts::{ArtifactManifest, NewArtifact};
use cairn_core::logged_models::NewLoggedModel;
use cairn_core::model::{Actor, KeyValue, NewRun};
use cairn_core::registry::{
    HistoryKind, ModelVersionQuery, ModelVersionStatus, NewModelVersion, NewRegisteredModel, RegisteredModelQuery,
    Stage,
};
use cairn_core::search::{
    parse_model_version_filter, parse_model_version_order_by_list, parse_registered_model_filter,
    parse_registered_model_order_by_list,
};
use cairn_core::store::Store;

fn actor() -> Actor {
    Actor("tester".to_owned())
}

fn new_model(name: &str) -> NewRegisteredModel {
    NewRegisteredModel { name: name.to_owned(), ..NewRegisteredModel::default() }
}

fn new_version(name: &str, source: &str) -> NewModelVersion {
    NewModelVersion {
        name: name.to_owned(),
        source: source.to_owned(),
        user_id: "u".into(),
        ..NewModelVersion::default()
    }
}

async fn new_run(store: &Arc<dyn Store>) -> String {
    let new = NewRun { experiment_id: "0".into(), user_id: "u".into(), start_time: Some(1), ..NewRun::default() };
    store.create_run(&actor(), new).await.expect("create run").info.run_id
}

fn manifest(store: &Arc<dyn Store>) -> Arc<dyn ArtifactManifest> {
    store.clone().artifact_manifest().expect("the SQL store keeps a manifest")
}

fn file(path: &str, digest_byte: char, size: u64) -> NewArtifact {
    NewArtifact { path: path.to_owned(), digest: digest_byte.to_string().repeat(64), size }
}

async fn assert_verifies(store: &Arc<dyn Store>) {
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_ok(), "{:?}", report.problems);
}

/// Lets the clock move on, so that consecutive changes get distinct millisecond times.
async fn tick() {
    std::thread::sleep(Duration::from_millis(5));
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[track_caller]
fn assert_err<T: std::fmt::Debug>(result: cairn_core::Result<T>, expected: fn(&Error) -> bool, needle: &str) {
    match result {
        Err(e) if expected(&e) && e.to_string().contains(needle) => {}
        other => panic!("expected an error containing {needle:?}, got {other:?}"),
    }
}

fn not_found(e: &Error) -> bool {
    matches!(e, Error::NotFound(_))
}

fn invalid(e: &Error) -> bool {
    matches!(e, Error::InvalidParameter(_))
}

pub async fn models_create_rename_update_delete(store: Arc<dyn Store>) {
    let mut new = new_model("fraud");
    new.description = Some("first".into());
    new.tags = vec![KeyValue::new("team", "a"), KeyValue::new("team", "b"), KeyValue::new("kind", "clf")];
    let created = store.create_registered_model(&actor(), new.clone()).await.unwrap();
    assert_eq!(created.name, "fraud");
    assert_eq!(created.creation_timestamp, created.last_updated_timestamp);
    assert_eq!(created.tags, vec![KeyValue::new("kind", "clf"), KeyValue::new("team", "b")], "last value wins");
    assert_eq!(store.get_registered_model("fraud").await.unwrap(), created);

    assert_err(
        store.create_registered_model(&actor(), new).await,
        |e| matches!(e, Error::AlreadyExists(_)),
        "Registered Model (name=fraud) already exists.",
    );
    assert_err(store.create_registered_model(&actor(), new_model("a/b")).await, invalid, "cannot contain '/'");
    assert_err(store.get_registered_model("nope").await, not_found, "Registered Model with name=nope not found");

    store.create_model_version(&actor(), new_version("fraud", "s3://b/m")).await.unwrap();
    store.set_registered_model_alias(&actor(), "fraud", "champion", 1).await.unwrap();
    store.create_registered_model(&actor(), new_model("other")).await.unwrap();
    assert_err(
        store.rename_registered_model(&actor(), "fraud", "other").await,
        |e| matches!(e, Error::AlreadyExists(_)),
        "Registered Model (name=other) already exists.",
    );
    let renamed = store.rename_registered_model(&actor(), "fraud", "fraud-v2").await.unwrap();
    assert_eq!(renamed.name, "fraud-v2");
    assert_eq!(renamed.aliases.len(), 1, "aliases follow the rename");
    assert_err(store.get_registered_model("fraud").await, not_found, "name=fraud not found");
    let version = store.get_model_version("fraud-v2", 1).await.unwrap();
    assert_eq!((version.name.as_str(), version.aliases.clone()), ("fraud-v2", vec!["champion".to_owned()]));

    let updated = store.update_registered_model(&actor(), "fraud-v2", None).await.unwrap();
    assert_eq!(updated.description, None);
    store.set_registered_model_tag(&actor(), "fraud-v2", KeyValue::new("team", "c")).await.unwrap();
    store.delete_registered_model_tag(&actor(), "fraud-v2", "kind").await.unwrap();
    store.delete_registered_model_tag(&actor(), "fraud-v2", "never-set").await.unwrap();
    assert_eq!(store.get_registered_model("fraud-v2").await.unwrap().tags, vec![KeyValue::new("team", "c")]);

    store.delete_registered_model(&actor(), "fraud-v2").await.unwrap();
    assert_err(store.get_registered_model("fraud-v2").await, not_found, "not found");
    assert_err(
        store.get_model_version("fraud-v2", 1).await,
        not_found,
        "Model Version (name=fraud-v2, version=1) not found",
    );
    // The name is free again, and numbering starts over for the new model.
    store.create_registered_model(&actor(), new_model("fraud-v2")).await.unwrap();
    let v = store.create_model_version(&actor(), new_version("fraud-v2", "s3://b/m")).await.unwrap();
    assert_eq!(v.version, 1);
    assert!(v.aliases.is_empty(), "aliases of the deleted model are gone");
    assert_verifies(&store).await;
}

pub async fn versions_are_numbered_and_never_reused(store: Arc<dyn Store>) {
    store.create_registered_model(&actor(), new_model("m")).await.unwrap();
    for expected in 1..=3 {
        let mut new = new_version("m", "s3://bucket/model");
        new.tags = vec![KeyValue::new("k", expected.to_string())];
        let v = store.create_model_version(&actor(), new).await.unwrap();
        assert_eq!(v.version, expected);
        assert_eq!((v.status, v.current_stage, v.pin_id.clone()), (ModelVersionStatus::Ready, Stage::None, None));
        assert_eq!(v.tags, vec![KeyValue::new("k", expected.to_string())]);
    }
    store.delete_model_version(&actor(), "m", 3).await.unwrap();
    assert_err(store.get_model_version("m", 3).await, not_found, "Model Version (name=m, version=3) not found");
    assert_err(store.delete_model_version(&actor(), "m", 3).await, not_found, "not found");
    assert_eq!(store.create_model_version(&actor(), new_version("m", "x")).await.unwrap().version, 4);

    assert_err(store.create_model_version(&actor(), new_version("nope", "x")).await, not_found, "name=nope not found");
    // A version naming an unknown run is accepted, as MLflow does: see
    // `versions_of_unknown_runs_are_kept_with_incomplete_lineage`.

    let updated = store.update_model_version(&actor(), "m", 2, Some("better".into())).await.unwrap();
    assert_eq!(updated.description.as_deref(), Some("better"));
    assert!(updated.last_updated_timestamp >= updated.creation_timestamp);
    store.set_model_version_tag(&actor(), "m", 2, KeyValue::new("k", "new")).await.unwrap();
    store.set_model_version_tag(&actor(), "m", 2, KeyValue::new("z", "1")).await.unwrap();
    store.delete_model_version_tag(&actor(), "m", 2, "z").await.unwrap();
    store.delete_model_version_tag(&actor(), "m", 2, "absent").await.unwrap();
    assert_eq!(store.get_model_version("m", 2).await.unwrap().tags, vec![KeyValue::new("k", "new")]);
    assert_err(store.set_model_version_tag(&actor(), "m", 3, KeyValue::new("k", "v")).await, not_found, "version=3");
    assert_verifies(&store).await;
}

pub async fn stage_transitions_archive_and_are_kept(store: Arc<dyn Store>) {
    store.create_registered_model(&actor(), new_model("m")).await.unwrap();
    for _ in 0..3 {
        store.create_model_version(&actor(), new_version("m", "s3://b/x")).await.unwrap();
    }
    store.transition_model_version_stage(&actor(), "m", 1, Stage::Production, false).await.unwrap();
    store.transition_model_version_stage(&actor(), "m", 2, Stage::Production, false).await.unwrap();
    let v3 = store.transition_model_version_stage(&actor(), "m", 3, Stage::Production, true).await.unwrap();
    assert_eq!(v3.current_stage, Stage::Production);
    for old in [1, 2] {
        assert_eq!(store.get_model_version("m", old).await.unwrap().current_stage, Stage::Archived);
    }
    assert_err(
        store.transition_model_version_stage(&actor(), "m", 1, Stage::Archived, true).await,
        invalid,
        "'Archived' is not an Active stage",
    );

    let latest = store.get_latest_versions("m", vec![]).await.unwrap();
    let stages: Vec<(Stage, i64)> = latest.iter().map(|v| (v.current_stage, v.version)).collect();
    assert_eq!(stages, vec![(Stage::Archived, 2), (Stage::Production, 3)]);
    let production = store.get_latest_versions("m", vec![Stage::Production]).await.unwrap();
    assert_eq!(production.iter().map(|v| v.version).collect::<Vec<_>>(), [3]);
    assert!(store.get_latest_versions("m", vec![Stage::Staging]).await.unwrap().is_empty());
    let model = store.get_registered_model("m").await.unwrap();
    assert_eq!(model.latest_versions.len(), 2);

    let transitions: Vec<(Option<i64>, Option<Stage>, Option<Stage>)> = store
        .model_history("m", None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == HistoryKind::StageTransition)
        .map(|e| (e.version, e.from_stage, e.to_stage))
        .collect();
    assert_eq!(
        transitions,
        vec![
            (Some(1), Some(Stage::None), Some(Stage::Production)),
            (Some(2), Some(Stage::None), Some(Stage::Production)),
            (Some(1), Some(Stage::Production), Some(Stage::Archived)),
            (Some(2), Some(Stage::Production), Some(Stage::Archived)),
            (Some(3), Some(Stage::None), Some(Stage::Production)),
        ]
    );
    assert_verifies(&store).await;
}

pub async fn aliases_move_and_their_history_survives_rename_and_deletion(store: Arc<dyn Store>) {
    store.create_registered_model(&actor(), new_model("churn")).await.unwrap();
    for _ in 0..3 {
        store.create_model_version(&actor(), new_version("churn", "s3://b/x")).await.unwrap();
    }
    assert_err(store.set_registered_model_alias(&actor(), "churn", "latest", 1).await, invalid, "'latest' alias name");
    assert_err(store.set_registered_model_alias(&actor(), "churn", "v2", 1).await, invalid, "Version alias name 'v2'");
    assert_err(
        store.set_registered_model_alias(&actor(), "churn", "bad alias", 1).await,
        invalid,
        "Invalid alias name",
    );
    assert_err(store.set_registered_model_alias(&actor(), "churn", "champion", 9).await, not_found, "version=9");

    tick().await;
    store.set_registered_model_alias(&actor(), "churn", "champion", 1).await.unwrap();
    let t1 = now_millis();
    tick().await;
    store.set_registered_model_alias(&actor(), "churn", "champion", 2).await.unwrap();
    let t2 = now_millis();
    tick().await;
    assert_eq!(store.get_model_version_by_alias("churn", "champion").await.unwrap().version, 2);
    assert_eq!(store.get_model_version_by_alias("churn", "LATEST").await.unwrap().version, 3);
    assert_err(
        store.get_model_version_by_alias("churn", "nobody").await,
        invalid,
        "Registered model alias nobody not found.",
    );

    store.rename_registered_model(&actor(), "churn", "retention").await.unwrap();
    let t3 = now_millis();
    tick().await;
    store.set_registered_model_alias(&actor(), "retention", "champion", 3).await.unwrap();
    let t4 = now_millis();
    tick().await;
    store.delete_model_version(&actor(), "retention", 3).await.unwrap();
    let t5 = now_millis();
    tick().await;
    assert_err(store.get_model_version_by_alias("retention", "champion").await, invalid, "not found");

    // Either name reaches the whole timeline.
    for name in ["churn", "retention"] {
        assert_eq!(store.alias_as_of(name, "champion", t1).await.unwrap(), Some(1), "{name} at t1");
        assert_eq!(store.alias_as_of(name, "champion", t2).await.unwrap(), Some(2), "{name} at t2");
        assert_eq!(store.alias_as_of(name, "champion", t3).await.unwrap(), Some(2), "{name} at t3");
        assert_eq!(store.alias_as_of(name, "champion", t4).await.unwrap(), Some(3), "{name} at t4");
        assert_eq!(store.alias_as_of(name, "champion", t5).await.unwrap(), None, "{name} at t5");
    }
    assert_eq!(store.alias_as_of("churn", "champion", 0).await.unwrap(), None, "before the model existed");

    store.set_registered_model_alias(&actor(), "retention", "champion", 1).await.unwrap();
    tick().await;
    store.delete_registered_model(&actor(), "retention").await.unwrap();
    let after = now_millis();
    let history = store.model_history("retention", None).await.unwrap();
    assert_eq!(store.model_history("churn", None).await.unwrap(), history, "one timeline under both names");
    let kinds: Vec<HistoryKind> = history.iter().map(|e| e.kind).collect();
    use HistoryKind::*;
    assert_eq!(
        kinds,
        vec![
            ModelCreated,
            VersionCreated,
            VersionCreated,
            VersionCreated,
            AliasSet,
            AliasSet,
            ModelRenamed,
            AliasSet,
            AliasDeleted,
            VersionDeleted,
            AliasSet,
            AliasDeleted,
            ModelDeleted
        ]
    );
    let moved = &history[5];
    assert_eq!((moved.version, moved.previous_version, moved.name.as_str()), (Some(2), Some(1), "churn"));
    assert_eq!(moved.actor, "tester");
    let renamed = &history[6];
    assert_eq!((renamed.name.as_str(), renamed.previous_name.as_deref()), ("retention", Some("churn")));
    assert!(history.windows(2).all(|w| w[0].seq <= w[1].seq), "oldest first");
    assert_eq!(store.alias_as_of("retention", "champion", after).await.unwrap(), None, "the model is gone");
    assert_eq!(store.alias_as_of("retention", "champion", t4).await.unwrap(), Some(3), "still answerable");
    let as_of = store.model_history("retention", Some(t2)).await.unwrap();
    assert_eq!(as_of.len(), 6, "as_of cuts the timeline: {as_of:?}");
    assert_err(store.model_history("never", None).await, not_found, "name=never not found");
    assert_verifies(&store).await;
}

pub async fn pinned_files_do_not_follow_later_run_changes(store: Arc<dyn Store>) {
    let run = new_run(&store).await;
    let files = manifest(&store);
    files.put_artifact(&actor(), &run, file("model/MLmodel", 'a', 10)).await.unwrap();
    files.put_artifact(&actor(), &run, file("model/data/weights.bin", 'b', 20)).await.unwrap();
    files.put_artifact(&actor(), &run, file("model2/other", 'c', 1)).await.unwrap();
    store.create_registered_model(&actor(), new_model("m")).await.unwrap();
    let mut new = new_version("m", &format!("runs:/{run}/model"));
    new.run_id = Some(run.clone());
    let v = store.create_model_version(&actor(), new).await.unwrap();
    let pin = v.pin_id.clone().expect("a run's files are pinned");
    assert!(pin.starts_with("mv-") && pin.len() == 35, "{pin}");

    // The run's files change afterwards; the version's do not.
    files.put_artifact(&actor(), &run, file("model/MLmodel", 'd', 11)).await.unwrap();
    files.delete_artifacts(&actor(), &run, "model/data").await.unwrap();
    let pinned = store.pinned_files(&pin, "").await.unwrap();
    let listed: Vec<(&str, &str, u64)> = pinned.iter().map(|f| (f.path.as_str(), &f.digest[..1], f.size)).collect();
    assert_eq!(listed, vec![("MLmodel", "a", 10), ("data/weights.bin", "b", 20)]);
    let under: Vec<String> = store.pinned_files(&pin, "data").await.unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(under, ["data/weights.bin"]);
    assert!(store.pinned_files(&pin, "dat").await.unwrap().is_empty(), "prefixes are directories");
    assert_err(store.pinned_files("mv-00000000000000000000000000000000", "").await, not_found, "mv-0000");

    // The blob the run no longer names stays referenced by the version.
    assert!(files.is_referenced(&"b".repeat(64)).await.unwrap());

    // An mlflow-artifacts URI under the run's location pins too; an outside source does not.
    let run_info = store.get_run(&run).await.unwrap().info;
    let mut by_uri = new_version("m", &format!("{}/model2", run_info.artifact_uri));
    by_uri.run_id = Some(run.clone());
    let v2 = store.create_model_version(&actor(), by_uri).await.unwrap();
    let other: Vec<String> =
        store.pinned_files(v2.pin_id.as_deref().unwrap(), "").await.unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(other, ["other"]);
    assert_eq!(store.create_model_version(&actor(), new_version("m", "s3://elsewhere/m")).await.unwrap().pin_id, None);
    let empty = new_version("m", &format!("runs:/{run}/nothing-here"));
    assert_eq!(store.create_model_version(&actor(), empty).await.unwrap().pin_id, None);
    // A version registered from another version shares its files under its own pin.
    let copy = store.create_model_version(&actor(), new_version("m", "models:/m/1")).await.unwrap();
    let copied: Vec<String> =
        store.pinned_files(copy.pin_id.as_deref().unwrap(), "").await.unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(copied, ["MLmodel", "data/weights.bin"]);

    // Deleting the versions lets the blob go.
    store.delete_registered_model(&actor(), "m").await.unwrap();
    assert!(!files.is_referenced(&"b".repeat(64)).await.unwrap());
    assert_err(store.pinned_files(&pin, "").await, not_found, &pin);
    assert_verifies(&store).await;
}

pub async fn versions_from_logged_models_pin_the_model_files(store: Arc<dyn Store>) {
    let logged = NewLoggedModel { experiment_id: "0".into(), ..NewLoggedModel::default() };
    let logged = store.create_logged_model(&actor(), logged).await.unwrap();
    let files = manifest(&store);
    files.put_artifact(&actor(), &logged.model_id, file("MLmodel", 'e', 5)).await.unwrap();
    files.put_artifact(&actor(), &logged.model_id, file("model.pkl", 'f', 6)).await.unwrap();
    store.create_registered_model(&actor(), new_model("m")).await.unwrap();
    let mut new = new_version("m", &format!("models:/{}", logged.model_id));
    new.model_id = Some(logged.model_id.clone());
    let v = store.create_model_version(&actor(), new).await.unwrap();
    assert_eq!(v.model_id.as_deref(), Some(logged.model_id.as_str()));
    let pin = v.pin_id.expect("a logged model's files are pinned");
    files.put_artifact(&actor(), &logged.model_id, file("model.pkl", 'g', 7)).await.unwrap();
    let pinned: Vec<(String, u64)> =
        store.pinned_files(&pin, "").await.unwrap().into_iter().map(|f| (f.path, f.size)).collect();
    assert_eq!(pinned, vec![("MLmodel".to_owned(), 5), ("model.pkl".to_owned(), 6)]);

    // The logged model's artifact location names the same files.
    let by_location = new_version("m", &format!("{}/model.pkl", logged.artifact_location));
    let v2 = store.create_model_version(&actor(), by_location).await.unwrap();
    assert!(logged.artifact_location.starts_with("mlflow-artifacts:/"), "{}", logged.artifact_location);
    let pinned = store.pinned_files(v2.pin_id.as_deref().expect("pinned"), "").await.unwrap();
    assert_eq!((pinned.len(), pinned[0].path.as_str(), pinned[0].size), (1, "model.pkl", 7));
    let unknown = new_version("m", "models:/m-00000000000000000000000000000000");
    assert_eq!(store.create_model_version(&actor(), unknown).await.unwrap().pin_id, None);
    assert_verifies(&store).await;
}

async fn model_names(store: &Arc<dyn Store>, filter: &str, order_by: &[&str], max: u64) -> Vec<String> {
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let query = RegisteredModelQuery {
            filter: parse_registered_model_filter(filter).unwrap(),
            order_by: parse_registered_model_order_by_list(order_by).unwrap(),
            max_results: max,
            offset,
        };
        let page = store.search_registered_models(query).await.unwrap();
        assert!(page.items.len() as u64 <= max);
        names.extend(page.items.into_iter().map(|m| m.name));
        match page.next_offset {
            Some(next) => offset = next,
            None => return names,
        }
    }
}

async fn version_keys(store: &Arc<dyn Store>, filter: &str, order_by: &[&str]) -> Vec<String> {
    let query = ModelVersionQuery {
        filter: parse_model_version_filter(filter).unwrap(),
        order_by: parse_model_version_order_by_list(order_by).unwrap(),
        max_results: 100,
        offset: 0,
    };
    let page = store.search_model_versions(query).await.unwrap();
    page.items.into_iter().map(|v| format!("{}/{}", v.name, v.version)).collect()
}

pub async fn searches_filter_order_and_page(store: Arc<dyn Store>) {
    let run = new_run(&store).await;
    for (name, team) in [("beta", "x"), ("Alpha", "y"), ("alpha-2", "x"), ("gamma_%", "z")] {
        let mut new = new_model(name);
        new.tags = vec![KeyValue::new("team", team)];
        store.create_registered_model(&actor(), new).await.unwrap();
        tick().await;
    }
    let mut prompt = new_model("a-prompt");
    prompt.tags = vec![KeyValue::new("mlflow.prompt.is_prompt", "true")];
    store.create_registered_model(&actor(), prompt).await.unwrap();
    store.set_registered_model_tag(&actor(), "beta", KeyValue::new("team", "x2")).await.unwrap();
    store.update_registered_model(&actor(), "beta", Some("updated last".into())).await.unwrap();

    assert_eq!(model_names(&store, "", &[], 100).await, ["Alpha", "alpha-2", "beta", "gamma_%"], "prompts hidden");
    assert_eq!(model_names(&store, "", &[], 1).await, ["Alpha", "alpha-2", "beta", "gamma_%"], "pages of one");
    assert_eq!(model_names(&store, "name LIKE 'alpha%'", &[], 100).await, ["alpha-2"]);
    assert_eq!(model_names(&store, "name ILIKE 'alpha%'", &[], 100).await, ["Alpha", "alpha-2"]);
    assert_eq!(model_names(&store, "name != 'beta'", &["name DESC"], 100).await, ["gamma_%", "alpha-2", "Alpha"]);
    assert_eq!(model_names(&store, "name IN ('beta', 'Alpha', 'zeta')", &[], 100).await, ["Alpha", "beta"]);
    assert_eq!(model_names(&store, "tags.team = 'x'", &[], 100).await, ["alpha-2"]);
    assert_eq!(model_names(&store, "tags.team LIKE 'x%' AND name ILIKE '%A%'", &[], 100).await, ["alpha-2", "beta"]);
    assert_eq!(model_names(&store, "tags.`mlflow.prompt.is_prompt` = 'true'", &[], 100).await, ["a-prompt"]);
    assert_eq!(model_names(&store, "name = 'gamma_%'", &[], 100).await, ["gamma_%"]);
    assert_eq!(
        model_names(&store, "", &["timestamp DESC"], 100).await,
        ["beta", "gamma_%", "alpha-2", "Alpha"],
        "beta was updated last"
    );
    assert_eq!(model_names(&store, "", &["creation_timestamp ASC"], 2).await, ["beta", "Alpha", "alpha-2", "gamma_%"]);

    for (name, n) in [("beta", 2), ("Alpha", 1)] {
        for _ in 0..n {
            let mut new = new_version(name, &format!("runs:/{run}/m"));
            new.run_id = Some(run.clone());
            store.create_model_version(&actor(), new).await.unwrap();
            tick().await;
        }
    }
    store.set_model_version_tag(&actor(), "beta", 1, KeyValue::new("ok", "yes")).await.unwrap();
    assert_eq!(version_keys(&store, "", &[]).await, ["Alpha/1", "beta/2", "beta/1"], "newest update first");
    assert_eq!(version_keys(&store, "name = 'beta'", &["version_number ASC"]).await, ["beta/1", "beta/2"]);
    assert_eq!(version_keys(&store, "version_number >= 2", &[]).await, ["beta/2"]);
    assert_eq!(version_keys(&store, "version_number = '1'", &["name ASC"]).await, ["Alpha/1", "beta/1"]);
    assert_eq!(
        version_keys(&store, &format!("run_id IN ('{run}', 'x')"), &["creation_timestamp"]).await,
        ["beta/1", "beta/2", "Alpha/1"]
    );
    assert_eq!(version_keys(&store, "tags.ok = 'yes'", &[]).await, ["beta/1"]);
    assert_eq!(
        version_keys(&store, "source_path LIKE 'runs:/%/m'", &["name DESC"]).await,
        ["beta/2", "beta/1", "Alpha/1"]
    );
    assert!(version_keys(&store, "run_id = 'nope'", &[]).await.is_empty());
}

#[test]
fn bad_registry_searches_are_rejected() {
    let bad_model_filters = [
        ("status = 'x'", "Invalid attribute key 'status' specified"),
        ("metrics.x > 1", "Invalid entity type 'metrics'"),
        ("name > 'a'", "Invalid comparator for attribute: >"),
        ("tags.k IN ('a')", "Expected a quoted string value for tag"),
        ("tags.k > 'a'", "Invalid comparator for tag: >"),
        ("name = 1", "Expected a quoted string value or a list"),
        ("tags.k = 1", "Expected a quoted string value for tag"),
        ("name = 'a' OR name = 'b'", "Invalid clause(s) in filter string"),
    ];
    for (filter, needle) in bad_model_filters {
        assert_err(parse_registered_model_filter(filter), invalid, needle);
    }
    let bad_version_filters = [
        ("source_path IN ('a')", "Only ['name', 'run_id'] attributes support comparison with a list"),
        ("version_number > 1.5", "Invalid value for numeric attribute 'version_number': 1.5"),
        ("version_number = 'x'", "Invalid value for numeric attribute 'version_number': 'x'"),
        ("version_number LIKE '1'", "Invalid comparator for attribute version_number: LIKE"),
        ("run_id = 5", "support comparison with numeric values"),
        ("creation_timestamp > 5", "Invalid attribute key 'creation_timestamp' specified"),
    ];
    for (filter, needle) in bad_version_filters {
        assert_err(parse_model_version_filter(filter), invalid, needle);
    }
    assert_err(parse_registered_model_order_by_list(&["tags.x"]), invalid, "Invalid order by key 'tags.x'");
    assert_err(
        parse_registered_model_order_by_list(&["timestamp", "last_updated_timestamp DESC"]),
        invalid,
        "duplicate",
    );
    assert_err(parse_model_version_order_by_list(&["run_id"]), invalid, "Invalid order by key 'run_id'");
    assert_err(parse_model_version_order_by_list(&["name", "name DESC"]), invalid, "duplicate");
}

pub async fn every_registry_change_is_audited(store: Arc<dyn Store>) {
    let before = store.audit_events(0, 10_000).await.unwrap().len();
    store.create_registered_model(&actor(), new_model("m")).await.unwrap();
    store.create_model_version(&actor(), new_version("m", "s3://x")).await.unwrap();
    store.set_registered_model_alias(&actor(), "m", "a", 1).await.unwrap();
    store.transition_model_version_stage(&actor(), "m", 1, Stage::Staging, false).await.unwrap();
    store.delete_registered_model_alias(&actor(), "m", "a").await.unwrap();
    store.delete_registered_model_alias(&actor(), "m", "a").await.unwrap();
    let events = store.audit_events(0, 10_000).await.unwrap();
    let actions: Vec<&str> = events[before..].iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "create_registered_model",
            "create_model_version",
            "set_registered_model_alias",
            "transition_model_version_stage",
            "delete_registered_model_alias"
        ],
        "a no-op deletion writes nothing"
    );
    // The history entry of each change carries its event's seq.
    let history = store.model_history("m", None).await.unwrap();
    let alias_set = history.iter().find(|e| e.kind == HistoryKind::AliasSet).unwrap();
    let event = events.iter().find(|e| e.seq == alias_set.seq).unwrap();
    assert_eq!(event.action, "set_registered_model_alias");
    assert!(event.payload.contains("model_history") && event.payload.contains("registered_model_alias"));
    // A failed request leaves neither rows, history nor events.
    assert!(store.set_registered_model_alias(&actor(), "m", "b", 7).await.is_err());
    assert_eq!(store.audit_events(0, 10_000).await.unwrap().len(), events.len());
    assert_eq!(store.model_history("m", None).await.unwrap().len(), history.len());
    assert_verifies(&store).await;
}

/// As in MLflow, a version may name a run this server has never seen: it is stored with that
/// run id, pins no files, audits cleanly, and its lineage reports the training run as missing.
async fn versions_of_unknown_runs_are_kept_with_incomplete_lineage(store: Arc<dyn Store>) {
    store.create_registered_model(&actor(), new_model("elsewhere")).await.unwrap();
    let ghost = "0123456789abcdef0123456789abcdef";
    let mut new = new_version("elsewhere", &format!("runs:/{ghost}/model"));
    new.run_id = Some(ghost.to_owned());
    let created = store.create_model_version(&actor(), new).await.expect("an unknown run is accepted");
    assert_eq!(created.run_id.as_deref(), Some(ghost));
    assert_eq!(created.version, 1);
    let fetched = store.get_model_version("elsewhere", 1).await.unwrap();
    assert_eq!(fetched.run_id.as_deref(), Some(ghost));
    let node = cairn_core::lineage::NodeRef::model_version("elsewhere", 1).unwrap();
    let completeness = store.completeness(&node, None).await.unwrap();
    assert!(!completeness.complete);
    assert!(completeness.missing.iter().any(|m| m == "training_run"), "{:?}", completeness.missing);

    // A known run still counts as the training run.
    let run_id = new_run(&store).await;
    let mut new = new_version("elsewhere", &format!("runs:/{run_id}/model"));
    new.run_id = Some(run_id);
    store.create_model_version(&actor(), new).await.unwrap();
    let node = cairn_core::lineage::NodeRef::model_version("elsewhere", 2).unwrap();
    let completeness = store.completeness(&node, None).await.unwrap();
    assert!(!completeness.missing.iter().any(|m| m == "training_run"), "{:?}", completeness.missing);
    assert_verifies(&store).await;
}

/// Runs every case above against a backend's `fixture()`.
macro_rules! registry_cases {
    ($fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $fixture().await;
                super::$case(store.clone()).await;
                store.close().await.expect("close");
            }
        )*
    };
}

macro_rules! all_registry_cases {
    ($fixture:path) => {
        registry_cases!($fixture;
            models_create_rename_update_delete,
            versions_are_numbered_and_never_reused,
            stage_transitions_archive_and_are_kept,
            aliases_move_and_their_history_survives_rename_and_deletion,
            pinned_files_do_not_follow_later_run_changes,
            versions_from_logged_models_pin_the_model_files,
            searches_filter_order_and_page,
            every_registry_change_is_audited,
            versions_of_unknown_runs_are_kept_with_incomplete_lineage,
        );
    };
}

mod sqlite {
    all_registry_cases!(crate::sqlite::fixture);

    /// A registry row or history entry edited behind the server's back is reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registry_tampering_is_detected() {
        let (store, dir) = crate::sqlite::fixture().await;
        super::tamper_setup(&store).await;
        let db = dir.path().join("cairn.db");
        let edit = |sql: &str| {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            assert_eq!(conn.execute(sql, []).unwrap(), 1, "{sql}");
        };
        for (sql, undo, needle) in super::TAMPERING {
            edit(sql);
            super::assert_tamper_reported(&store, needle).await;
            edit(undo);
            super::assert_verifies(&store).await;
        }
    }
}

mod postgres {
    use cairn_store::postgres::{PgDb, Role, config_from_uri};
    use cairn_store::sql::db::Db;

    all_registry_cases!(crate::postgres::fixture);

    /// Runs one statement on a raw connection, behind the store's back.
    async fn raw_execute(url: &str, sql: &'static str) {
        let config = config_from_uri(url).expect("url");
        let changed = tokio::task::spawn_blocking(move || {
            PgDb::connect(&config, Role::Write).expect("connect").execute(sql, &[]).expect("execute")
        })
        .await
        .expect("task");
        assert_eq!(changed, 1, "{sql}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registry_tampering_is_detected() {
        let (store, url) = crate::postgres::fixture().await;
        super::tamper_setup(&store).await;
        for (sql, undo, needle) in super::TAMPERING {
            raw_execute(&url, sql).await;
            super::assert_tamper_reported(&store, needle).await;
            raw_execute(&url, undo).await;
            super::assert_verifies(&store).await;
        }
    }
}

/// Edits (and their undoing) of registry rows, with what the report must name.
const TAMPERING: [(&str, &str, &str); 3] = [
    (
        "UPDATE registered_model_aliases SET version = 1 WHERE alias = 'champion'",
        "UPDATE registered_model_aliases SET version = 2 WHERE alias = 'champion'",
        "registered_model_alias",
    ),
    (
        "UPDATE model_history SET version = 1 WHERE kind = 'alias_set' AND version = 2",
        "UPDATE model_history SET version = 2 WHERE kind = 'alias_set' AND version = 1",
        "model_history",
    ),
    (
        "UPDATE model_versions SET current_stage = 'Production' WHERE version = 1",
        "UPDATE model_versions SET current_stage = 'None' WHERE version = 1",
        "model_version",
    ),
];

async fn tamper_setup(store: &Arc<dyn Store>) {
    store.create_registered_model(&actor(), new_model("victim")).await.unwrap();
    store.create_model_version(&actor(), new_version("victim", "s3://x")).await.unwrap();
    store.create_model_version(&actor(), new_version("victim", "s3://x")).await.unwrap();
    store.set_registered_model_alias(&actor(), "victim", "champion", 2).await.unwrap();
    assert_verifies(store).await;
}

async fn assert_tamper_reported(store: &Arc<dyn Store>, needle: &str) {
    let report = store.verify_audit().await.unwrap();
    assert!(!report.is_ok(), "tampering with {needle} went unnoticed");
    assert!(report.problems.iter().any(|p| p.message.contains(needle)), "{needle}: {:?}", report.problems);
}
