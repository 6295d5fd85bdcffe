//! `/api/cairn/v1/predictions`: predictions arrive in bulk from serving systems, and each can be
//! traced back to the deployment, model version, training run, data and code that made it.
//!
//! - `POST /api/cairn/v1/predictions` `{"predictions": [{prediction_id, deployment | model_version,
//!   input_digest, output_digest?, time?}, …], "strict": false}` stores the batch atomically
//!   and answers `{"accepted": n, "flagged": [ids]}`; a flagged prediction was stored but its
//!   model version's lineage is incomplete. With `strict`, such a batch is refused whole.
//!   At most [`MAX_PREDICTION_BATCH`] per request.
//! - `GET /api/cairn/v1/predictions/{id}/trace[?as_of=T]` answers `{prediction, completeness,
//!   lineage}`: the prediction, what its model version's lineage lacks, and everything upstream.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use cairn_core::lineage::{MAX_PREDICTION_BATCH, NewPrediction, NodeKind, PredictionTrace};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBytes, RequestActor, parse_query};
use crate::native::lineage::{as_of, json_kind, json_object, path_error, refuse_unknown_fields, take};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/cairn/v1/predictions", post(log_predictions))
        .route("/api/cairn/v1/predictions/{id}/trace", get(trace))
}

/// The batch and its mode, read and checked before the store sees any of it.
fn batch(mut map: Map<String, Value>) -> ApiResult<(Vec<NewPrediction>, bool)> {
    refuse_unknown_fields(&map, &["predictions", "strict"])?;
    let strict = match take(&mut map, "strict") {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(ApiError::invalid(format!("strict must be a boolean, got {}", json_kind(&other)))),
    };
    let items = match take(&mut map, "predictions") {
        None => return Err(ApiError::invalid("predictions is required: a list of predictions")),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ApiError::invalid(format!("predictions must be an array, got {}", json_kind(&other))));
        }
    };
    if items.len() > MAX_PREDICTION_BATCH {
        return Err(ApiError::invalid(format!(
            "A batch holds at most {MAX_PREDICTION_BATCH} predictions; this one has {}. Split it into \
             smaller batches.",
            items.len()
        )));
    }
    let predictions = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| prediction(item).map_err(|e| ApiError::invalid(format!("predictions[{i}]: {e}"))))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((predictions, strict))
}

/// One prediction. Callers may name the deployment and model version as nodes
/// (`deployment:prod`, `model-version:churn/3`) or by key alone.
fn prediction(item: Value) -> Result<NewPrediction, String> {
    if !item.is_object() {
        return Err(format!("a prediction must be an object, got {}", json_kind(&item)));
    }
    let mut p: NewPrediction = serde_json::from_value(item).map_err(|e| e.to_string())?;
    let strip = |value: &mut Option<String>, kind: NodeKind| {
        if let Some(key) =
            value.as_deref().and_then(|v| v.strip_prefix(kind.as_str())).and_then(|r| r.strip_prefix(':'))
        {
            *value = Some(key.to_owned());
        }
    };
    strip(&mut p.deployment, NodeKind::Deployment);
    strip(&mut p.model_version, NodeKind::ModelVersion);
    if p.prediction_id.is_empty() {
        return Err("prediction_id must not be empty".into());
    }
    if p.input_digest.is_empty() {
        return Err("input_digest must not be empty".into());
    }
    if p.deployment.is_none() && p.model_version.is_none() {
        return Err("give the deployment that served the prediction or the model_version that made it".into());
    }
    Ok(p)
}

async fn log_predictions(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    body: Result<JsonBytes, ApiError>,
) -> ApiResult<Json<Value>> {
    let (predictions, strict) = batch(json_object(body)?)?;
    if predictions.is_empty() {
        return Ok(Json(json!({ "accepted": 0, "flagged": [] })));
    }
    let report = state.store.log_predictions(&actor, predictions, strict).await?;
    Ok(Json(json!({ "accepted": report.accepted, "flagged": report.flagged })))
}

async fn trace(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<PredictionTrace>> {
    let Path(id) = path.map_err(path_error)?;
    let args = parse_query(query.as_deref(), &[])?;
    Ok(Json(state.store.trace_prediction(&id, as_of(&args)?).await?))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::native::lineage::testing::TestApp;

    const PATH: &str = "/api/cairn/v1/predictions";

    fn one(id: usize) -> Value {
        json!({"prediction_id": format!("p{id}"), "deployment": "prod", "input_digest": "ab"})
    }

    #[tokio::test]
    async fn batches_over_the_limit_or_malformed_are_refused_whole() {
        let app = TestApp::new().await;
        let too_many: Vec<Value> = (0..=MAX_PREDICTION_BATCH).map(one).collect();
        let message = app.post(PATH, &json!({ "predictions": too_many })).await.error(400, "INVALID_PARAMETER_VALUE");
        assert!(message.contains("at most 10000") && message.contains("10001"), "{message}");

        let cases = [
            (json!({}), "predictions is required"),
            (json!({"predictions": {}}), "must be an array"),
            (json!({"predictions": [one(1)], "strict": "yes"}), "strict must be a boolean"),
            (json!({"predictions": [one(1)], "mode": "x"}), "Unknown field 'mode'"),
            (json!({"predictions": [one(1), 7]}), "predictions[1]: a prediction must be an object"),
            (
                json!({"predictions": [{"prediction_id": "p", "deployment": "d"}]}),
                "predictions[0]: missing field `input_digest`",
            ),
            (
                json!({"predictions": [{"prediction_id": "p", "input_digest": "x"}]}),
                "predictions[0]: give the deployment",
            ),
            (
                json!({"predictions": [one(0), {"prediction_id": "", "deployment": "d", "input_digest": "x"}]}),
                "predictions[1]: prediction_id",
            ),
            (
                json!({"predictions": [{"prediction_id": "p", "deployment": "d", "input_digest": "x", "extra": 1}]}),
                "unknown field `extra`",
            ),
        ];
        for (body, needle) in cases {
            let message = app.post(PATH, &body).await.error(400, "INVALID_PARAMETER_VALUE");
            assert!(message.contains(needle), "expected '{needle}' in '{message}'");
        }
        let reply = app.post(PATH, &json!({"predictions": []})).await;
        assert_eq!(reply.body, json!({"accepted": 0, "flagged": []}));
    }

    #[test]
    fn node_prefixes_are_accepted_on_deployments_and_model_versions() {
        let p =
            prediction(json!({"prediction_id": "p", "deployment": "deployment:prod", "input_digest": "x"})).unwrap();
        assert_eq!(p.deployment.as_deref(), Some("prod"));
        let p = prediction(json!({"prediction_id": "p", "model_version": "model-version:m/2", "input_digest": "x"}))
            .unwrap();
        assert_eq!(p.model_version.as_deref(), Some("m/2"));
    }

    #[tokio::test]
    async fn a_trace_reads_as_of() {
        let app = TestApp::new().await;
        let message = app.get(&format!("{PATH}/p1/trace?as_of=noon")).await.error(400, "INVALID_PARAMETER_VALUE");
        assert!(message.contains("'as_of'"), "{message}");
    }
}
