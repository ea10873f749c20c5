//! The impact window and the first-event latencies inside and outside it, in one pass.
//!
//! The window runs from the start of the first affected request (failed, or failed over) to the
//! end of the last one. Both ends are known only once those requests finish, so a latency cannot
//! always be placed when it is read. Each provider keeps, exactly and in bounded memory:
//!
//! - `outside`, `inside`: latencies placed for good;
//! - `tail`: latencies after the window's end so far: inside if a later affected request ends
//!   after them, outside if none does;
//! - `pending`: latencies before the window's start (or before any window) that a request still
//!   in flight could yet pull inside, were it to end affected. Once every request in flight
//!   started after a pending latency, that latency is outside for good. At most [`PENDING_CAP`]
//!   are held (a request that hangs for the whole recording would otherwise hold them all): past
//!   that the oldest is placed outside.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;

use super::LATENCY_MAX_MS;

/// The most latencies held undecided per provider (16 bytes each).
const PENDING_CAP: usize = 65_536;
/// The tail's latencies are kept as a list up to this many, then in a histogram: a window that
/// grows after every few requests moves a few values, not a whole histogram, each time.
const TAIL_LIST: usize = 4096;

/// A lazily created latency histogram (most providers never need all of theirs).
#[derive(Debug, Clone, Default)]
pub(super) struct Latency(Option<Histogram<u64>>);

impl Latency {
    pub(super) fn record(&mut self, ms: u64) {
        if self.0.is_none() {
            self.0 = Histogram::new_with_bounds(1, LATENCY_MAX_MS, 3).ok();
        }
        if let Some(h) = self.0.as_mut() {
            // Saturating: a latency beyond an hour is recorded as an hour, not dropped.
            h.saturating_record(ms);
        }
    }

    pub(super) fn add(&mut self, other: &Latency) {
        let Some(theirs) = &other.0 else { return };
        match &mut self.0 {
            Some(mine) => {
                // Same bounds on both sides: adding cannot fail.
                let _ = mine.add(theirs);
            }
            None => self.0 = Some(theirs.clone()),
        }
    }

    pub(super) fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    pub(super) fn percentile(&self, q: f64) -> Option<u64> {
        self.0
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q))
    }

    fn clear(&mut self) {
        if let Some(h) = self.0.as_mut() {
            h.reset();
        }
    }
}

/// One provider's first-event latencies, split by the window (see the module's doc).
#[derive(Debug, Clone, Default)]
pub(super) struct Split {
    outside: Latency,
    inside: Latency,
    tail: Latency,
    tail_list: Vec<u64>,
    pending: VecDeque<(DateTime<Utc>, u64)>,
}

impl Split {
    /// Place a latency read at `ts`; `horizon` is the earliest start of a request in flight.
    pub(super) fn record(
        &mut self,
        ts: DateTime<Utc>,
        ms: u64,
        window: Option<Window>,
        horizon: Option<DateTime<Utc>>,
    ) {
        match window {
            Some(w) if ts >= w.start && ts <= w.end => self.inside.record(ms),
            Some(w) if ts > w.end => {
                if self.tail_list.len() >= TAIL_LIST {
                    self.tail_list.drain(..).for_each(|v| self.tail.record(v));
                }
                self.tail_list.push(ms);
            }
            _ => {
                self.pending.push_back((ts, ms));
                self.settle(horizon);
            }
        }
    }

    /// Place outside the pending latencies no request in flight can pull inside any more.
    fn settle(&mut self, horizon: Option<DateTime<Utc>>) {
        while let Some(&(ts, ms)) = self.pending.front() {
            let undecided = horizon.is_some_and(|h| ts >= h);
            if undecided && self.pending.len() <= PENDING_CAP {
                break;
            }
            self.outside.record(ms);
            self.pending.pop_front();
        }
    }

    /// The window grew from `before` to `now`: what it now covers moves inside.
    pub(super) fn widen(&mut self, before: Option<Window>, now: Window) {
        if before.is_some_and(|b| now.end > b.end) {
            self.tail_list.drain(..).for_each(|v| self.inside.record(v));
            if self.tail.count() > 0 {
                self.inside.add(&self.tail);
                self.tail.clear();
            }
        }
        if before.is_none_or(|b| now.start < b.start) {
            let inside = &mut self.inside;
            self.pending.retain(|&(ts, ms)| {
                let covered = ts >= now.start && ts <= now.end;
                if covered {
                    inside.record(ms);
                }
                !covered
            });
        }
    }

    /// Latencies outside the window, as they stand at the end of the recording.
    pub(super) fn outside(&self) -> Latency {
        let mut all = self.outside.clone();
        all.add(&self.tail);
        for &ms in &self.tail_list {
            all.record(ms);
        }
        for &(_, ms) in &self.pending {
            all.record(ms);
        }
        all
    }

    pub(super) fn inside(&self) -> &Latency {
        &self.inside
    }
}

/// The impact window as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The start times of the requests in flight (a multiset), for the earliest of them.
#[derive(Debug, Clone, Default)]
pub(super) struct Starts(BTreeMap<DateTime<Utc>, u32>);

impl Starts {
    pub(super) fn insert(&mut self, ts: DateTime<Utc>) {
        *self.0.entry(ts).or_default() += 1;
    }

    pub(super) fn remove(&mut self, ts: DateTime<Utc>) {
        if let Some(n) = self.0.get_mut(&ts) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(&ts);
            }
        }
    }

    pub(super) fn earliest(&self) -> Option<DateTime<Utc>> {
        self.0.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
    }

    #[test]
    fn latencies_are_placed_once_the_window_is_known() {
        let mut s = Split::default();
        // Before any window, while a request that started at 0 is in flight.
        s.record(t(10), 100, None, Some(t(0)));
        s.record(t(20), 200, None, Some(t(0)));
        // A request that started at 15 ends affected at 30: 20 is inside, 10 is not.
        let w = Window {
            start: t(15),
            end: t(30),
        };
        s.widen(None, w);
        s.record(t(40), 400, Some(w), Some(t(35)));
        assert_eq!(s.inside().count(), 1);
        // Another affected request ends at 50: 40 moves inside.
        let w2 = Window {
            start: t(15),
            end: t(50),
        };
        s.widen(Some(w), w2);
        s.record(t(60), 600, Some(w2), None);
        assert_eq!(s.inside().count(), 2);
        assert_eq!(s.inside().percentile(1.0), Some(400));
        // 10 (pending) and 60 (tail) are outside.
        assert_eq!(s.outside().count(), 2);
        assert_eq!(s.outside().percentile(0.0), Some(100));
        assert_eq!(s.outside().percentile(1.0), Some(600));
    }

    #[test]
    fn nothing_in_flight_settles_pending_latencies() {
        let mut s = Split::default();
        s.record(t(10), 100, None, None);
        assert!(s.pending.is_empty());
        assert_eq!(s.outside.count(), 1);
    }
}
