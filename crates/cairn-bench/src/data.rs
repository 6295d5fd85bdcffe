//! Deterministic workload data, so that every server (and the raw SQLite insert) receives the
//! same points and runs, and results can be compared across servers.

use crate::client::{Metric, Param};

/// SplitMix64 as a pure hash: the same inputs always give the same 64 bits.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A value in [0, 1) derived from `parts`.
pub fn unit(parts: &[u64]) -> f64 {
    let h = parts.iter().fold(0u64, |acc, &p| mix(acc ^ p));
    // The top 53 bits fill an f64 mantissa exactly.
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The shape of an ingest batch: `keys` metrics times `steps` consecutive steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    pub keys: u32,
    pub steps: u32,
}

impl BatchShape {
    /// Splits `batch_size` points over `keys` metric keys; the size must divide evenly so that
    /// every batch covers whole steps.
    pub fn new(batch_size: u32, keys: u32) -> anyhow::Result<Self> {
        anyhow::ensure!(keys > 0 && batch_size > 0, "batch size and key count must be positive");
        anyhow::ensure!(
            batch_size.is_multiple_of(keys),
            "batch size {batch_size} is not a multiple of the metric key count {keys}"
        );
        Ok(BatchShape { keys, steps: batch_size / keys })
    }

    /// Points per batch.
    pub fn size(self) -> u32 {
        self.keys * self.steps
    }
}

/// One point in the storage-independent form the raw insert uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub writer: u32,
    pub key: u32,
    pub step: i64,
    pub timestamp: i64,
    pub value: f64,
}

/// The points of batch number `batch` of writer `writer`: keys `m0..` each at the batch's steps.
pub fn batch_points(writer: u32, batch: u64, shape: BatchShape, base_ms: i64) -> impl Iterator<Item = Point> {
    let first_step = batch as i64 * i64::from(shape.steps);
    (0..shape.keys).flat_map(move |key| {
        (0..i64::from(shape.steps)).map(move |i| {
            let step = first_step + i;
            Point {
                writer,
                key,
                step,
                timestamp: base_ms + step,
                value: unit(&[u64::from(writer), u64::from(key), step as u64]),
            }
        })
    })
}

/// The name of metric key number `key`.
pub fn key_name(key: u32) -> String {
    format!("m{key}")
}

/// `batch_points` as `log-batch` metrics.
pub fn batch_metrics(writer: u32, batch: u64, shape: BatchShape, base_ms: i64) -> Vec<Metric> {
    batch_points(writer, batch, shape, base_ms)
        .map(|p| Metric { key: key_name(p.key), value: p.value, timestamp: p.timestamp, step: p.step })
        .collect()
}

/// The ten params and three metrics of search run number `i`: half the runs use `adam`, and
/// `acc` is uniform in [0, 1), so `metrics.acc > 0.49 AND params.optimizer = 'adam'` matches
/// about a quarter of them.
pub fn search_run(i: u64) -> (Vec<Param>, Vec<Metric>) {
    let pick = |field: u64, choices: &[&str]| -> String {
        choices[(mix(i ^ (field << 32)) % choices.len() as u64) as usize].to_owned()
    };
    let params = vec![
        ("optimizer", pick(1, &["adam", "sgd"])),
        ("lr", pick(2, &["0.1", "0.01", "0.001", "0.0001"])),
        ("batch_size", pick(3, &["16", "32", "64", "128"])),
        ("layers", pick(4, &["2", "4", "8"])),
        ("dropout", pick(5, &["0.0", "0.1", "0.3"])),
        ("activation", pick(6, &["relu", "gelu", "tanh"])),
        ("weight_decay", pick(7, &["0", "1e-4", "1e-2"])),
        ("warmup", pick(8, &["0", "100", "1000"])),
        ("scheduler", pick(9, &["cosine", "linear", "none"])),
        ("seed", i.to_string()),
    ];
    let params = params.into_iter().map(|(k, v)| Param { key: k.to_owned(), value: v }).collect();
    let ts = crate::client::now_ms();
    let metric = |key: &str, value: f64| Metric { key: key.to_owned(), value, timestamp: ts, step: 0 };
    let metrics = vec![metric("acc", unit(&[i, 1])), metric("loss", unit(&[i, 2]) * 3.0), metric("f1", unit(&[i, 3]))];
    (params, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_shape_requires_whole_steps() {
        assert_eq!(BatchShape::new(1000, 10).unwrap(), BatchShape { keys: 10, steps: 100 });
        assert!(BatchShape::new(1000, 3).is_err());
        assert!(BatchShape::new(0, 10).is_err());
    }

    #[test]
    fn batches_tile_the_steps_without_overlap() {
        let shape = BatchShape::new(20, 2).unwrap();
        let first: Vec<Point> = batch_points(0, 0, shape, 0).collect();
        let second: Vec<Point> = batch_points(0, 1, shape, 0).collect();
        assert_eq!(first.len(), 20);
        assert_eq!(first.iter().filter(|p| p.key == 1).map(|p| p.step).max(), Some(9));
        assert_eq!(second.iter().map(|p| p.step).min(), Some(10));
    }

    #[test]
    fn data_is_deterministic_and_in_range() {
        let a: Vec<Point> = batch_points(3, 7, BatchShape::new(10, 1).unwrap(), 5).collect();
        let b: Vec<Point> = batch_points(3, 7, BatchShape::new(10, 1).unwrap(), 5).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|p| (0.0..1.0).contains(&p.value)));
        assert_ne!(a[0].value, a[1].value);
    }

    #[test]
    fn search_runs_split_about_evenly_between_optimizers() {
        let adam = (0..1000).filter(|&i| search_run(i).0[0].value == "adam").count();
        assert!((400..600).contains(&adam), "{adam} of 1000 runs use adam");
        let (params, metrics) = search_run(1);
        assert_eq!((params.len(), metrics.len()), (10, 3));
    }
}
