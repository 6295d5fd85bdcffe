//! Points in time as users write them: milliseconds since the epoch or RFC 3339.

use crate::model::Millis;
use crate::{Error, Result};

/// Parses an instant given as whole milliseconds since the Unix epoch (`1763942400000`) or as
/// an RFC 3339 timestamp (`2026-11-23T10:00:00Z`, any offset).
pub fn parse_instant(text: &str) -> Result<Millis> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).map_err(|_| {
        Error::invalid(format!(
            "'{text}' is not a time: give milliseconds since the epoch or an RFC 3339 timestamp \
             such as 2026-11-23T10:00:00Z"
        ))
    })
}

/// Formats `ms` as an RFC 3339 UTC timestamp with millisecond precision.
pub fn format_instant(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_from_either_spelling() {
        assert_eq!(parse_instant("1763892000000").unwrap(), 1_763_892_000_000);
        assert_eq!(parse_instant("2025-11-23T10:00:00Z").unwrap(), 1_763_892_000_000);
        assert_eq!(parse_instant("2025-11-23T11:00:00+01:00").unwrap(), 1_763_892_000_000);
        assert_eq!(format_instant(1_763_892_000_123), "2025-11-23T10:00:00.123Z");
        for bad in ["", "yesterday", "2025-13-01T00:00:00Z", "12.5"] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }
}
