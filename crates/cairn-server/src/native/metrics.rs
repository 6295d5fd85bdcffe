//! `GET /api/cairn/v1/metrics/sampled`: downsampled metric histories that keep each bucket's
//! extremes, for charts of long series (the rules are in `cairn_core::sampling`).

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use cairn_core::sampling::{SAMPLED_POINTS_DEFAULT, SampledQuery, SampledSeries};

use crate::error::{ApiError, ApiResult};
use crate::extract::parse_query;
use crate::sized_json::SizedJson;
use crate::{AppState, wire};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/cairn/v1/metrics/sampled", get(sampled))
}

/// Room for one bucket in the response: five numbers and their separators.
const BUCKET_BYTES: usize = 100;

async fn sampled(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<SizedJson> {
    let args = parse_query(query.as_deref(), &["run_id"])?;
    let points = match args.i64("points")? {
        None => SAMPLED_POINTS_DEFAULT,
        // Negative counts are out of range like zero, which validation reports with the value.
        Some(n) if n < 0 => return Err(ApiError::invalid(format!("points must be between 1 and 10000; got {n}."))),
        Some(n) => n as u64,
    };
    let query = SampledQuery {
        run_ids: args.str_list("run_id")?,
        key: args.str("key")?.unwrap_or_default(),
        points,
        start_step: args.i64("start_step")?,
        end_step: args.i64("end_step")?,
    };
    // Checked here too so that a malformed request never waits for a read connection.
    query.validate()?;
    let series = state.store.sampled_metrics(query).await?;
    let capacity = series.iter().map(|s| s.step.len() * BUCKET_BYTES + s.run_id.len() + s.key.len() + 100).sum();
    Ok(SizedJson::new(&SampledJson(&series), capacity))
}

/// `{"series": [...]}`, written straight from the store's columns.
struct SampledJson<'a>(&'a [SampledSeries]);

impl Serialize for SampledJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("series", &SeriesList(self.0))?;
        map.end()
    }
}

struct SeriesList<'a>(&'a [SampledSeries]);

impl Serialize for SeriesList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for series in self.0 {
            seq.serialize_element(&SeriesJson(series))?;
        }
        seq.end()
    }
}

struct SeriesJson<'a>(&'a SampledSeries);

impl Serialize for SeriesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let mut map = serializer.serialize_map(Some(9))?;
        map.serialize_entry("run_id", &s.run_id)?;
        map.serialize_entry("key", &s.key)?;
        map.serialize_entry("total", &s.total)?;
        map.serialize_entry("sampled", &s.sampled)?;
        map.serialize_entry("step", &s.step)?;
        map.serialize_entry("timestamp", &s.timestamp)?;
        map.serialize_entry("value", &Values(&s.value))?;
        map.serialize_entry("min", &Values(&s.min))?;
        map.serialize_entry("max", &Values(&s.max))?;
        map.end()
    }
}

/// Doubles with the wire rule of MLflow's metric values (NaN as `"NaN"`, ±infinity clamped to
/// the largest double), so a chart reads them as it reads a history page.
struct Values<'a>(&'a [f64]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(&wire::MetricValueJson(*v))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::native::lineage::testing::TestApp;

    const SAMPLED: &str = "/api/cairn/v1/metrics/sampled";

    /// A run with `loss` logged at steps `0..n` (value = step, a spike of 1e9 at step 7 and NaN
    /// at step 3), through MLflow's routes.
    async fn run_with_loss(app: &TestApp, n: i64) -> String {
        let exp = app.post("/api/2.0/mlflow/experiments/create", &json!({"name": format!("e{n}")})).await;
        let exp = exp.body["experiment_id"].as_str().expect("experiment id").to_owned();
        let run = app.post("/api/2.0/mlflow/runs/create", &json!({"experiment_id": exp})).await;
        let run_id = run.body["run"]["info"]["run_id"].as_str().expect("run id").to_owned();
        let value = |s: i64| match s {
            3 => json!("NaN"),
            7 => json!(1e9),
            9 => json!("Infinity"),
            s => json!(s),
        };
        let metrics: Vec<Value> =
            (0..n).map(|s| json!({"key": "loss", "value": value(s), "timestamp": 100 + s, "step": s})).collect();
        let logged = app.post("/api/2.0/mlflow/runs/log-batch", &json!({"run_id": run_id, "metrics": metrics})).await;
        assert_eq!(logged.status.as_u16(), 200, "{:?}", logged.body);
        run_id
    }

    #[tokio::test]
    async fn series_come_back_columnar_with_extremes_in_request_order() {
        let app = TestApp::new().await;
        let a = run_with_loss(&app, 20).await;
        let b = run_with_loss(&app, 4).await;
        let reply = app.get(&format!("{SAMPLED}?run_id={a}&run_id={b}&key=loss&points=2")).await;
        assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
        assert!(reply.content_type.starts_with("application/json"));
        let max = 1.7976931348623157e308;
        assert_eq!(
            reply.body,
            json!({"series": [
                {"run_id": a, "key": "loss", "total": 20, "sampled": true,
                 "step": [9, 19], "timestamp": [109, 119], "value": [max, 19.0],
                 "min": [0.0, 10.0], "max": [max, 19.0]},
                {"run_id": b, "key": "loss", "total": 4, "sampled": true,
                 "step": [1, 3], "timestamp": [101, 103], "value": [1.0, "NaN"],
                 "min": [0.0, 2.0], "max": [1.0, 2.0]},
            ]})
        );
        // A range with room for every point: raw, and the default of 1000 buckets.
        let raw = app.get(&format!("{SAMPLED}?run_id={a}&key=loss&start_step=2&end_step=4")).await;
        assert_eq!(
            raw.body["series"][0],
            json!({"run_id": a, "key": "loss", "total": 3, "sampled": false, "step": [2, 3, 4],
                   "timestamp": [102, 103, 104], "value": [2.0, "NaN", 4.0], "min": [2.0, "NaN", 4.0],
                   "max": [2.0, "NaN", 4.0]})
        );
        let unlogged = app.get(&format!("{SAMPLED}?run_id={a}&key=acc")).await;
        assert_eq!(
            unlogged.body,
            json!({"series": [{"run_id": a, "key": "acc", "total": 0, "sampled": false, "step": [],
                               "timestamp": [], "value": [], "min": [], "max": []}]})
        );
    }

    #[tokio::test]
    async fn bad_requests_get_precise_errors() {
        let app = TestApp::new().await;
        let a = run_with_loss(&app, 3).await;
        let many: String = (0..101).map(|i| format!("run_id=r{i}&")).collect();
        let cases = [
            (format!("{SAMPLED}?key=loss"), "Missing value for required parameter 'run_id'"),
            (format!("{SAMPLED}?run_id={a}"), "Missing value for required parameter 'key'"),
            (format!("{SAMPLED}?run_id={a}&key="), "Missing value for required parameter 'key'"),
            (format!("{SAMPLED}?run_id={a}&run_id=&key=loss"), "run_id number 2 is empty"),
            (format!("{SAMPLED}?{many}key=loss"), "At most 100 run_id values may be given; got 101"),
            (format!("{SAMPLED}?run_id={a}&key=loss&points=0"), "points must be between 1 and 10000; got 0"),
            (format!("{SAMPLED}?run_id={a}&key=loss&points=-4"), "points must be between 1 and 10000; got -4"),
            (format!("{SAMPLED}?run_id={a}&key=loss&points=10001"), "points must be between 1 and 10000; got 10001"),
            (format!("{SAMPLED}?run_id={a}&key=loss&points=ten"), "'points'"),
            (format!("{SAMPLED}?run_id={a}&key=loss&start_step=1.5"), "'start_step'"),
            (
                format!("{SAMPLED}?run_id={a}&key=loss&start_step=5&end_step=4"),
                "start_step must not be greater than end_step; got start_step=5 and end_step=4",
            ),
        ];
        for (uri, needle) in cases {
            let message = app.get(&uri).await.error(400, "INVALID_PARAMETER_VALUE");
            assert!(message.contains(needle), "{uri}: {message:?} lacks {needle:?}");
        }
        let missing = app.get(&format!("{SAMPLED}?run_id={a}&run_id=ghost&key=loss")).await;
        assert_eq!(missing.error(404, "RESOURCE_DOES_NOT_EXIST"), "Run with id=ghost not found");
        // The boundaries themselves are accepted.
        for points in [1, 10_000] {
            let ok = app.get(&format!("{SAMPLED}?run_id={a}&key=loss&points={points}")).await;
            assert_eq!(ok.status.as_u16(), 200, "{points}: {:?}", ok.body);
        }
    }
}
