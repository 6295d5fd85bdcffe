//! Page-size rules shared by the search routes, with MLflow's messages.

use cairn_core::store::SEARCH_MAX_RESULTS_THRESHOLD;

use crate::error::{ApiError, ApiResult};
use crate::extract::Fields;

/// `max_results` of a search: `default` when absent, otherwise 1 to 50,000.
pub fn max_results(args: &Fields, default: u64) -> ApiResult<u64> {
    let Some(n) = args.i64("max_results")? else { return Ok(default) };
    if n < 1 {
        return Err(ApiError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer"
        )));
    }
    if n as u64 > SEARCH_MAX_RESULTS_THRESHOLD {
        return Err(ApiError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most \
             {SEARCH_MAX_RESULTS_THRESHOLD}"
        )));
    }
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::extract::parse_body;

    fn check(body: serde_json::Value, expected: Result<u64, &str>) {
        let fields = parse_body(body.to_string().as_bytes()).unwrap();
        let got = max_results(&fields, 1000).map_err(|e| e.message);
        match expected {
            Ok(n) => assert_eq!(got, Ok(n)),
            Err(fragment) => assert!(got.as_ref().unwrap_err().contains(fragment), "{got:?}"),
        }
    }

    #[test]
    fn limits() {
        check(json!({}), Ok(1000));
        check(json!({"max_results": "20"}), Ok(20));
        check(json!({"max_results": 50000}), Ok(50000));
        check(json!({"max_results": 0}), Err("It must be a positive integer"));
        check(json!({"max_results": 50001}), Err("It must be at most 50000"));
        check(json!({"max_results": "ten"}), Err("Value was of type 'str'"));
    }
}
