//! Time windows for the charts: one cell per `step`, ending at the dashboard's `now`, with a step
//! chosen from round values so that the panel's width covers at least the wanted span.

use chrono::{DateTime, TimeDelta, Utc};

/// Round steps, in seconds, so the axis reads `5s/cell` rather than `4.3s/cell`.
const STEPS: [i64; 10] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub end: DateTime<Utc>,
    pub step: TimeDelta,
    pub cells: usize,
}

impl Window {
    /// The smallest round step that makes `cells` cells cover `wanted`.
    pub fn new(end: DateTime<Utc>, cells: usize, wanted: TimeDelta) -> Window {
        let cells_i = i64::try_from(cells.max(1)).unwrap_or(i64::MAX);
        let need = wanted.num_seconds().div_euclid(cells_i).max(1);
        let secs = STEPS
            .iter()
            .copied()
            .find(|s| s * cells_i >= wanted.num_seconds() && *s >= need)
            .unwrap_or(STEPS[STEPS.len() - 1]);
        Window {
            end,
            step: TimeDelta::seconds(secs),
            cells,
        }
    }

    pub fn span(&self) -> TimeDelta {
        self.step * i32::try_from(self.cells).unwrap_or(i32::MAX)
    }

    pub fn start(&self) -> DateTime<Utc> {
        ago(self.end, self.span())
    }

    /// The cell an instant falls in, `None` outside the window (older, or after `end`).
    pub fn cell(&self, at: DateTime<Utc>) -> Option<usize> {
        if at > self.end {
            return None;
        }
        let ago = (self.end - at).num_milliseconds();
        let back = usize::try_from(ago / self.step.num_milliseconds().max(1)).ok()?;
        (back < self.cells).then(|| self.cells - 1 - back)
    }

    /// The end of cell `i`.
    pub fn cell_end(&self, i: usize) -> DateTime<Utc> {
        let back = i32::try_from(self.cells.saturating_sub(i + 1)).unwrap_or(i32::MAX);
        ago(self.end, self.step * back)
    }
}

/// `at - delta`, pinned to the earliest instant rather than panicking on nonsense timestamps.
fn ago(at: DateTime<Utc>, delta: TimeDelta) -> DateTime<Utc> {
    at.checked_sub_signed(delta)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_a_round_step_covering_the_span() {
        let end = DateTime::UNIX_EPOCH + TimeDelta::hours(1);
        let w = Window::new(end, 60, TimeDelta::minutes(10));
        assert_eq!(w.step, TimeDelta::seconds(10));
        let w = Window::new(end, 140, TimeDelta::minutes(10));
        assert_eq!(w.step, TimeDelta::seconds(5));
        assert_eq!(w.cell(end), Some(139));
        assert_eq!(w.cell(end - TimeDelta::seconds(5)), Some(138));
        assert_eq!(w.cell(end - TimeDelta::minutes(12)), None);
        assert_eq!(w.cell_end(139), end);
        assert_eq!(Window::new(end, 0, TimeDelta::minutes(10)).cell(end), None);
    }
}
