//! First-event latency over time, downsampled as it is read: each provider keeps at most
//! [`POINTS`] buckets of one shared width, and when the recording outgrows them every bucket
//! pair is merged and the width doubles. Memory is bounded whatever the recording's length; the
//! HTML report draws these.

/// The most buckets per provider (the chart's resolution).
pub(super) const POINTS: usize = 240;
/// The first buckets' width: a short recording is drawn in detail.
const FIRST_WIDTH_MS: u64 = 250;

/// The first events read in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Point {
    pub count: u64,
    pub sum_ms: u64,
    pub max_ms: u64,
}

impl Point {
    fn add(&mut self, other: Point) {
        self.count += other.count;
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    pub(super) fn mean_ms(&self) -> u64 {
        self.sum_ms.checked_div(self.count).unwrap_or(0)
    }
}

/// One provider's buckets; the width lives in [`Width`], shared by every provider.
#[derive(Debug, Clone, Default)]
pub(super) struct Series(Vec<Point>);

impl Series {
    pub(super) fn points(&self) -> &[Point] {
        &self.0
    }

    /// Merge bucket pairs: the width has doubled.
    pub(super) fn double(&mut self) {
        let merged = self
            .0
            .chunks(2)
            .map(|pair| {
                let mut p = Point::default();
                pair.iter().for_each(|q| p.add(*q));
                p
            })
            .collect();
        self.0 = merged;
    }

    /// Record at `index` (from [`bucket`]).
    pub(super) fn record(&mut self, index: usize, ms: u64) {
        if self.0.len() <= index {
            self.0.resize(index + 1, Point::default());
        }
        self.0[index].add(Point {
            count: 1,
            sum_ms: ms,
            max_ms: ms,
        });
    }
}

/// The buckets' width, shared so that every provider's chart has the same time axis.
#[derive(Debug, Clone, Copy)]
pub(super) struct Width(pub u64);

impl Default for Width {
    fn default() -> Self {
        Width(FIRST_WIDTH_MS)
    }
}

/// The bucket for `offset_ms` at `width`, or `None` when the width must double first.
pub(super) fn bucket(width: Width, offset_ms: u64) -> Option<usize> {
    let index = usize::try_from(offset_ms / width.0.max(1)).unwrap_or(usize::MAX);
    (index < POINTS).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_merge_when_the_recording_outgrows_them() {
        let mut s = Series::default();
        let mut w = Width::default();
        for (offset, ms) in [(0, 100), (300, 200), (600, 300)] {
            s.record(bucket(w, offset).unwrap_or(0), ms);
        }
        assert_eq!(s.points().len(), 3);
        // Far beyond POINTS buckets of 250 ms: double until it fits.
        let offset = 250 * POINTS as u64 * 3;
        while bucket(w, offset).is_none() {
            w.0 *= 2;
            s.double();
        }
        assert_eq!(w.0, 1000);
        s.record(bucket(w, offset).unwrap_or(0), 50);
        let p = s.points();
        assert_eq!(p[0].count, 3);
        assert_eq!(p[0].mean_ms(), 200);
        assert_eq!(p[0].max_ms, 300);
        assert_eq!(p.len(), 181);
        assert_eq!(p[180].max_ms, 50);
    }
}
