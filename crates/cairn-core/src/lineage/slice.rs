//! Slices of a dataset version and their digests.
//!
//! A training run rarely reads a whole dataset: it reads some partitions, a row range, the rows
//! matching a filter, or a seeded sample. A slice spec names exactly that, and its digest is
//! computed from the spec and the digest of the dataset version it applies to, so two runs that
//! read the same rows of the same bytes share one slice node, and any change of either gives a
//! different one.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{canonical_json, sha256_hex};
use crate::{Error, Result};

/// Which rows of a dataset version a run read. Every part is optional; all given parts apply.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceSpec {
    /// Partition names (order does not matter; duplicates count once).
    #[serde(default)]
    pub partitions: Vec<String>,
    /// Rows `[start, end)` by position.
    #[serde(default)]
    pub row_range: Option<[u64; 2]>,
    /// A filter expression in the reader's own language, kept verbatim.
    #[serde(default)]
    pub filter: Option<String>,
    /// The fraction of rows sampled, in `(0, 1]`.
    #[serde(default)]
    pub sample_fraction: Option<f64>,
    /// The sampler's seed; required with a fraction below 1, since without it the sample
    /// cannot be drawn again.
    #[serde(default)]
    pub seed: Option<u64>,
}

impl SliceSpec {
    /// Checks the spec and puts it in canonical form (partitions sorted and deduplicated).
    pub fn normalized(mut self) -> Result<Self> {
        if let Some([start, end]) = self.row_range
            && start >= end
        {
            return Err(Error::invalid(format!("Slice row_range [{start}, {end}) is empty")));
        }
        if let Some(fraction) = self.sample_fraction {
            if !(fraction > 0.0 && fraction <= 1.0) {
                return Err(Error::invalid(format!("Slice sample_fraction {fraction} is not in (0, 1]")));
            }
            if fraction < 1.0 && self.seed.is_none() {
                return Err(Error::invalid("A sampled slice needs a seed, or it cannot be reproduced"));
            }
        }
        if self.partitions.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid("Slice partitions may not be empty strings"));
        }
        self.partitions.sort();
        self.partitions.dedup();
        Ok(self)
    }
}

/// The digest of `spec` applied to the dataset version whose content digest is
/// `dataset_digest`: SHA-256 of the canonical JSON of both.
pub fn slice_digest(dataset_digest: &str, spec: &SliceSpec) -> Result<String> {
    let spec = spec.clone().normalized()?;
    let value = json!({
        "dataset_digest": dataset_digest,
        "partitions": spec.partitions,
        "row_range": spec.row_range,
        "filter": spec.filter,
        "sample_fraction": spec.sample_fraction,
        "seed": spec.seed,
    });
    Ok(sha256_hex(canonical_json(&value).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SliceSpec {
        SliceSpec {
            partitions: vec!["2026-10".into(), "2026-09".into()],
            row_range: Some([0, 1000]),
            filter: Some("country = 'NL'".into()),
            sample_fraction: Some(0.5),
            seed: Some(7),
        }
    }

    #[test]
    fn the_digest_ignores_partition_order_and_duplicates() {
        let mut reordered = spec();
        reordered.partitions = vec!["2026-09".into(), "2026-10".into(), "2026-09".into()];
        assert_eq!(slice_digest("abc", &spec()).unwrap(), slice_digest("abc", &reordered).unwrap());
    }

    #[test]
    fn the_digest_changes_with_the_data_or_any_part_of_the_spec() {
        let base = slice_digest("abc", &spec()).unwrap();
        assert_ne!(base, slice_digest("abd", &spec()).unwrap());
        let changes: [fn(&mut SliceSpec); 5] = [
            |s| s.partitions.push("2026-11".into()),
            |s| s.row_range = Some([0, 999]),
            |s| s.filter = None,
            |s| s.sample_fraction = Some(0.25),
            |s| s.seed = Some(8),
        ];
        for change in changes {
            let mut changed = spec();
            change(&mut changed);
            assert_ne!(base, slice_digest("abc", &changed).unwrap(), "{changed:?}");
        }
    }

    #[test]
    fn specs_that_cannot_be_reproduced_or_are_empty_are_refused() {
        let bad: [fn(&mut SliceSpec); 4] = [
            |s| s.row_range = Some([5, 5]),
            |s| s.sample_fraction = Some(0.0),
            |s| s.seed = None,
            |s| s.partitions.push(String::new()),
        ];
        for change in bad {
            let mut spec = spec();
            change(&mut spec);
            assert!(spec.clone().normalized().is_err(), "{spec:?}");
        }
        let whole = SliceSpec { sample_fraction: Some(1.0), ..SliceSpec::default() };
        assert!(whole.normalized().is_ok());
    }
}
