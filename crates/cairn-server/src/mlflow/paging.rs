//! Request rules shared by the search routes: page sizes (with MLflow's messages), filters and
//! orderings.

use cairn_core::search::{Filter, OrderBy};
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

/// The `filter` and `order_by` fields of a search, parsed with the grammar of the searched
/// entity (runs and experiments accept different names). A blank filter is the empty filter.
pub fn filter_and_order(
    args: &Fields,
    parse_filter: fn(&str) -> cairn_core::Result<Filter>,
    parse_order_by: fn(&str) -> cairn_core::Result<OrderBy>,
) -> ApiResult<(Filter, Vec<OrderBy>)> {
    let filter = match args.str("filter")? {
        Some(f) if !f.trim().is_empty() => parse_filter(&f)?,
        _ => Filter::default(),
    };
    let order_by =
        args.str_list("order_by")?.iter().map(|o| parse_order_by(o)).collect::<cairn_core::Result<Vec<_>>>()?;
    Ok((filter, order_by))
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
