//! Downsampled metric histories that keep extremes: a long series is cut into buckets of equal
//! step width, and each bucket reports its last point together with its minimum and maximum, so
//! a chart drawn from a thousand buckets still shows a spike that happened at one step out of a
//! million.
//!
//! The rules, which every store follows because it feeds its rows through [`Downsampler`]:
//! - The step range is the requested one, or else the series' own first and last step; it is
//!   cut into `points` buckets of equal width. A bucket's point is its last one: greatest step,
//!   then timestamp, then value (in `f64::total_cmp` order, which puts NaN above every number).
//! - NaN is a value like any other for the bucket's point, but not for its extremes: `min` and
//!   `max` are taken over the bucket's other values, so one NaN does not hide a spike next to
//!   it. A bucket holding only NaN has NaN extremes. ±infinity is an extreme like any number.
//! - A series with no more points in range than `points` is returned whole (min = max = value),
//!   marked `sampled = false`.

use crate::{Error, Result};

/// Buckets per series when a request does not say.
pub const SAMPLED_POINTS_DEFAULT: u64 = 1000;
/// The most buckets a request may ask for.
pub const SAMPLED_POINTS_MAX: u64 = 10_000;
/// The most runs one request may name.
pub const SAMPLED_RUNS_MAX: usize = 100;

/// A request for the downsampled history of one metric in several runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledQuery {
    pub run_ids: Vec<String>,
    pub key: String,
    /// Buckets per series, `1..=SAMPLED_POINTS_MAX`.
    pub points: u64,
    /// Inclusive bounds; a missing bound is the series' own first or last step.
    pub start_step: Option<i64>,
    pub end_step: Option<i64>,
}

impl SampledQuery {
    /// Checks the request's shape; stores call this before reading anything.
    pub fn validate(&self) -> Result<()> {
        if self.run_ids.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'run_id'."));
        }
        if self.run_ids.len() > SAMPLED_RUNS_MAX {
            return Err(Error::invalid(format!(
                "At most {SAMPLED_RUNS_MAX} run_id values may be given; got {}.",
                self.run_ids.len()
            )));
        }
        if let Some(empty) = self.run_ids.iter().position(String::is_empty) {
            return Err(Error::invalid(format!("run_id number {} is empty.", empty + 1)));
        }
        if self.key.is_empty() {
            return Err(Error::invalid("Missing value for required parameter 'key'."));
        }
        if !(1..=SAMPLED_POINTS_MAX).contains(&self.points) {
            return Err(Error::invalid(format!(
                "points must be between 1 and {SAMPLED_POINTS_MAX}; got {}.",
                self.points
            )));
        }
        if let (Some(start), Some(end)) = (self.start_step, self.end_step)
            && start > end
        {
            return Err(Error::invalid(format!(
                "start_step must not be greater than end_step; got start_step={start} and end_step={end}."
            )));
        }
        Ok(())
    }
}

/// One run's downsampled series, columnar: entry `i` of every vector describes bucket `i` (or
/// point `i` when `sampled` is false). Empty buckets are left out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SampledSeries {
    pub run_id: String,
    pub key: String,
    /// Points of the series in the step range.
    pub total: u64,
    /// Whether the points were bucketed (false: every point in range is here).
    pub sampled: bool,
    pub step: Vec<i64>,
    pub timestamp: Vec<i64>,
    pub value: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

impl SampledSeries {
    /// The answer for a run that never logged the key, or has no point in range.
    pub fn empty(run_id: &str, key: &str) -> Self {
        SampledSeries { run_id: run_id.to_owned(), key: key.to_owned(), ..SampledSeries::default() }
    }
}

/// One stored point, as a store hands it over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: i64,
    pub timestamp: i64,
    pub value: f64,
}

impl Point {
    /// Whether `self` comes after `other` in a bucket: the bucket's point is the greatest.
    fn is_after(&self, other: &Point) -> bool {
        (self.step, self.timestamp).cmp(&(other.step, other.timestamp)).then(self.value.total_cmp(&other.value)).is_gt()
    }
}

/// What a bucket (or any group of points) says: how many points, the last one, and the
/// extremes of its values other than NaN (`None` when every value is NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub last: Point,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Summary {
    /// The summary of one point.
    pub fn of(point: Point) -> Self {
        let extreme = (!point.value.is_nan()).then_some(point.value);
        Summary { count: 1, last: point, min: extreme, max: extreme }
    }

    /// Folds another group into this one.
    pub fn merge(&mut self, other: &Summary) {
        self.count += other.count;
        if other.last.is_after(&self.last) {
            self.last = other.last;
        }
        self.min = fold(self.min, other.min, f64::min);
        self.max = fold(self.max, other.max, f64::max);
    }
}

fn fold(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        (a, b) => a.or(b),
    }
}

/// The inclusive step range `lo..=hi` cut into `n` buckets of equal width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepBuckets {
    lo: i64,
    hi: i64,
    n: u64,
}

impl StepBuckets {
    /// `n >= 1` buckets over `lo..=hi`; the bounds are put in order if they are not.
    pub fn new(lo: i64, hi: i64, n: u64) -> Self {
        StepBuckets { lo: lo.min(hi), hi: lo.max(hi), n: n.max(1) }
    }

    /// The number of buckets.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Always false: there is at least one bucket.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bucket of `step`, or `None` outside the range. Computed in 128 bits because the
    /// range may span all of `i64`.
    pub fn index(&self, step: i64) -> Option<usize> {
        if step < self.lo || step > self.hi {
            return None;
        }
        let width = i128::from(self.hi) - i128::from(self.lo) + 1;
        let offset = i128::from(step) - i128::from(self.lo);
        Some((offset * i128::from(self.n) / width) as usize)
    }

    /// The first step of bucket `i` (the smallest step whose index is `i`).
    pub fn start(&self, i: usize) -> i64 {
        let width = i128::from(self.hi) - i128::from(self.lo) + 1;
        // The smallest offset with offset * n / width >= i is ceil(i * width / n).
        let offset = (i as i128 * width + i128::from(self.n) - 1) / i128::from(self.n);
        (i128::from(self.lo) + offset) as i64
    }
}

/// Folds the points of one series in a step range into a [`SampledSeries`]. Points may arrive
/// in any order; the raw points are kept (up to `points` of them) until the count shows that
/// the series must be bucketed.
#[derive(Debug)]
pub struct Downsampler {
    buckets: StepBuckets,
    points: u64,
    total: u64,
    raw: Vec<Point>,
    summaries: Vec<Option<Summary>>,
}

impl Downsampler {
    /// A downsampler into `points` buckets over `buckets`' range.
    pub fn new(buckets: StepBuckets, points: u64) -> Self {
        Downsampler { buckets, points, total: 0, raw: Vec::new(), summaries: vec![None; buckets.len()] }
    }

    /// Adds one point; points outside the range are ignored.
    pub fn push(&mut self, point: Point) {
        let Some(index) = self.buckets.index(point.step) else { return };
        self.total += 1;
        if self.total <= self.points {
            self.raw.push(point);
        } else if !self.raw.is_empty() {
            self.raw = Vec::new();
        }
        self.add(index, &Summary::of(point));
    }

    /// Adds a group of points already summarised (a store's rollup) that lie in one bucket.
    /// Its points can no longer be returned raw, so use this only when the range holds more
    /// than `points` points in all.
    pub fn push_summary(&mut self, index: usize, summary: &Summary) {
        if index >= self.summaries.len() {
            return;
        }
        self.total += summary.count;
        self.raw = Vec::new();
        self.add(index, summary);
    }

    fn add(&mut self, index: usize, summary: &Summary) {
        match &mut self.summaries[index] {
            Some(existing) => existing.merge(summary),
            slot @ None => *slot = Some(*summary),
        }
    }

    /// The series for `run_id` and `key`.
    pub fn finish(self, run_id: &str, key: &str) -> SampledSeries {
        let mut series = SampledSeries::empty(run_id, key);
        series.total = self.total;
        if self.total <= self.points {
            let mut raw = self.raw;
            raw.sort_by(|a, b| (a.step, a.timestamp).cmp(&(b.step, b.timestamp)).then(a.value.total_cmp(&b.value)));
            for p in raw {
                series.step.push(p.step);
                series.timestamp.push(p.timestamp);
                series.value.push(p.value);
                series.min.push(p.value);
                series.max.push(p.value);
            }
            return series;
        }
        series.sampled = true;
        for s in self.summaries.into_iter().flatten() {
            series.step.push(s.last.step);
            series.timestamp.push(s.last.timestamp);
            series.value.push(s.last.value);
            series.min.push(s.min.unwrap_or(f64::NAN));
            series.max.push(s.max.unwrap_or(f64::NAN));
        }
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: i64, value: f64) -> Point {
        Point { step, timestamp: step * 10, value }
    }

    fn query(points: u64) -> SampledQuery {
        SampledQuery { run_ids: vec!["r".into()], key: "loss".into(), points, start_step: None, end_step: None }
    }

    #[test]
    fn buckets_have_equal_width() {
        let b = StepBuckets::new(0, 99, 10);
        assert_eq!(
            (0..100).map(|s| b.index(s).unwrap()).collect::<Vec<_>>(),
            (0..100).map(|s| s / 10).collect::<Vec<_>>()
        );
        assert_eq!(b.index(-1), None);
        assert_eq!(b.index(100), None);
        assert_eq!((0..10).map(|i| b.start(i)).collect::<Vec<_>>(), (0..10).map(|i| i as i64 * 10).collect::<Vec<_>>());
        // 10 steps into 3 buckets: widths 3.33 give starts 0, 4, 7.
        let b = StepBuckets::new(0, 9, 3);
        assert_eq!((0..10).map(|s| b.index(s).unwrap()).collect::<Vec<_>>(), vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!((0..3).map(|i| b.start(i)).collect::<Vec<_>>(), vec![0, 4, 7]);
        // The whole i64 range does not overflow.
        let b = StepBuckets::new(i64::MIN, i64::MAX, 4);
        assert_eq!(b.index(i64::MIN), Some(0));
        assert_eq!(b.index(-1), Some(1));
        assert_eq!(b.index(0), Some(2));
        assert_eq!(b.index(i64::MAX), Some(3));
        assert_eq!(b.start(3), i64::MAX / 2 + 1);
    }

    #[test]
    fn small_series_come_back_raw_in_order() {
        let mut d = Downsampler::new(StepBuckets::new(0, 9, 5), 5);
        for p in [point(3, 3.0), point(1, f64::NAN), point(2, 2.0)] {
            d.push(p);
        }
        let s = d.finish("r", "loss");
        assert!(!s.sampled);
        assert_eq!(s.total, 3);
        assert_eq!(s.step, vec![1, 2, 3]);
        assert_eq!(s.timestamp, vec![10, 20, 30]);
        assert!(s.value[0].is_nan() && s.min[0].is_nan() && s.max[0].is_nan());
        assert_eq!((&s.value[1..], &s.min[1..], &s.max[1..]), (&[2.0, 3.0][..], &[2.0, 3.0][..], &[2.0, 3.0][..]));
    }

    #[test]
    fn buckets_keep_their_last_point_and_extremes() {
        let mut d = Downsampler::new(StepBuckets::new(0, 99, 4), 4);
        for step in 0..100 {
            let value = if step == 37 {
                1e9
            } else if step == 60 {
                -5.0
            } else {
                step as f64
            };
            d.push(point(step, value));
        }
        let s = d.finish("r", "loss");
        assert!(s.sampled);
        assert_eq!(s.total, 100);
        assert_eq!(s.step, vec![24, 49, 74, 99]);
        assert_eq!(s.timestamp, vec![240, 490, 740, 990]);
        assert_eq!(s.value, vec![24.0, 49.0, 74.0, 99.0]);
        assert_eq!(s.min, vec![0.0, 25.0, -5.0, 75.0]);
        assert_eq!(s.max, vec![24.0, 1e9, 74.0, 99.0]);
    }

    #[test]
    fn nan_is_a_point_but_not_an_extreme() {
        let mut d = Downsampler::new(StepBuckets::new(0, 5, 2), 2);
        for p in [point(0, 1.0), point(1, f64::NAN), point(2, f64::NAN), point(3, f64::NAN), point(4, f64::INFINITY)] {
            d.push(p);
        }
        d.push(point(5, f64::NEG_INFINITY));
        let s = d.finish("r", "loss");
        // Bucket 0 (steps 0..=2) ends with NaN but its extremes come from its number.
        assert!(s.value[0].is_nan());
        assert_eq!((s.min[0], s.max[0]), (1.0, 1.0));
        // Bucket 1 (steps 3..=5): infinities are extremes.
        assert_eq!(s.value[1], f64::NEG_INFINITY);
        assert_eq!((s.min[1], s.max[1]), (f64::NEG_INFINITY, f64::INFINITY));

        let mut d = Downsampler::new(StepBuckets::new(0, 3, 1), 1);
        d.push(point(0, f64::NAN));
        d.push(point(3, f64::NAN));
        let s = d.finish("r", "loss");
        assert!(s.min[0].is_nan() && s.max[0].is_nan());
    }

    #[test]
    fn the_last_point_is_by_step_then_timestamp_whatever_the_arrival_order() {
        let mut d = Downsampler::new(StepBuckets::new(0, 9, 1), 1);
        for (step, timestamp, value) in [(9, 5, 1.0), (9, 7, 2.0), (2, 100, 3.0), (9, 6, 4.0)] {
            d.push(Point { step, timestamp, value });
        }
        let s = d.finish("r", "loss");
        assert_eq!((s.step[0], s.timestamp[0], s.value[0]), (9, 7, 2.0));
        assert_eq!((s.min[0], s.max[0]), (1.0, 4.0));
    }

    #[test]
    fn summaries_merge_like_their_points() {
        let points: Vec<Point> = (0..50).map(|s| point(s, ((s * 7919) % 101) as f64)).collect();
        let mut direct = Downsampler::new(StepBuckets::new(0, 49, 5), 5);
        points.iter().for_each(|p| direct.push(*p));
        let mut merged = Downsampler::new(StepBuckets::new(0, 49, 5), 5);
        for chunk in points.chunks(5) {
            let mut s = Summary::of(chunk[0]);
            chunk[1..].iter().for_each(|p| s.merge(&Summary::of(*p)));
            merged.push_summary(StepBuckets::new(0, 49, 5).index(chunk[0].step).unwrap(), &s);
        }
        assert_eq!(direct.finish("r", "k"), merged.finish("r", "k"));
    }

    #[test]
    fn queries_are_validated_precisely() {
        assert!(query(1).validate().is_ok());
        assert!(query(SAMPLED_POINTS_MAX).validate().is_ok());
        let invalid = |q: SampledQuery, needle: &str| match q.validate() {
            Err(Error::InvalidParameter(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected an invalid-parameter error, got {other:?}"),
        };
        invalid(query(0), "points must be between 1 and 10000; got 0");
        invalid(query(10_001), "got 10001");
        invalid(SampledQuery { run_ids: vec![], ..query(5) }, "'run_id'");
        invalid(SampledQuery { run_ids: vec!["a".into(); 101], ..query(5) }, "At most 100 run_id");
        invalid(SampledQuery { run_ids: vec!["a".into(), String::new()], ..query(5) }, "run_id number 2");
        invalid(SampledQuery { key: String::new(), ..query(5) }, "'key'");
        invalid(SampledQuery { start_step: Some(5), end_step: Some(4), ..query(5) }, "start_step=5 and end_step=4");
        assert!(SampledQuery { start_step: Some(5), end_step: Some(5), ..query(5) }.validate().is_ok());
    }
}
