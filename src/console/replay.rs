//! Playing a recording into the console. The dashboard is fed the recorded events under a virtual
//! clock, so every panel shows what it showed live at that moment, and the same position always
//! gives the same frame. The file is read as it plays (memory stays bounded); jumping back re-reads
//! it from the start, and a background scan finds its length and the moments worth jumping to.

use chrono::{DateTime, TimeDelta, Utc};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::dashboard::Dashboard;
use crate::event::{Event, EventKind};
use crate::record::reader::{Reader, RecordError};

/// Events folded per frame at the `max` speed: fast, yet the keyboard stays answered.
const MAX_PER_FRAME: usize = 50_000;
/// Marks (failovers, breaker changes) kept for jumping.
const MARKS_KEPT: usize = 100_000;
/// Warnings (unreadable lines) kept for the status bar.
const WARNINGS_KEPT: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    Half,
    One,
    Two,
    Ten,
    Max,
}

impl Speed {
    const ORDER: [Speed; 5] = [Speed::Half, Speed::One, Speed::Two, Speed::Ten, Speed::Max];

    pub fn label(self) -> &'static str {
        match self {
            Speed::Half => "×0.5",
            Speed::One => "×1",
            Speed::Two => "×2",
            Speed::Ten => "×10",
            Speed::Max => "max",
        }
    }

    fn factor(self) -> f64 {
        match self {
            Speed::Half => 0.5,
            Speed::One => 1.0,
            Speed::Two => 2.0,
            Speed::Ten => 10.0,
            Speed::Max => f64::INFINITY,
        }
    }

    /// The next speed up (`faster`) or down, stopping at the ends.
    pub fn step(self, faster: bool) -> Speed {
        let i = Speed::ORDER.iter().position(|s| *s == self).unwrap_or(1);
        let j = if faster {
            (i + 1).min(Speed::ORDER.len() - 1)
        } else {
            i.saturating_sub(1)
        };
        Speed::ORDER[j]
    }
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim_start_matches(['x', '×']) {
            "0.5" => Ok(Speed::Half),
            "1" => Ok(Speed::One),
            "2" => Ok(Speed::Two),
            "10" => Ok(Speed::Ten),
            "max" => Ok(Speed::Max),
            _ => Err(format!("unknown speed `{text}`: use 0.5, 1, 2, 10 or max")),
        }
    }
}

/// What the whole file holds, found by the background scan.
#[derive(Debug, Clone, Default)]
struct Scan {
    end: Option<DateTime<Utc>>,
    events: u64,
    marks: Vec<DateTime<Utc>>,
}

/// Where the replay stands, for the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayView {
    pub file: String,
    pub start: DateTime<Utc>,
    pub position: DateTime<Utc>,
    /// `None` while the scan is still reading the file.
    pub end: Option<DateTime<Utc>>,
    pub applied: u64,
    pub total: Option<u64>,
    pub speed: Speed,
    pub paused: bool,
    /// Lines that could not be read (skipped), and the first of their messages.
    pub skipped: u64,
    pub first_warning: Option<String>,
}

pub struct Player {
    path: PathBuf,
    reader: Reader,
    /// The next event, read but not yet applied.
    pending: Option<Event>,
    start: DateTime<Utc>,
    position: DateTime<Utc>,
    applied: u64,
    speed: Speed,
    paused: bool,
    scan: Scan,
    scanning: Option<mpsc::Receiver<Scan>>,
    skipped: u64,
    warnings: Vec<String>,
}

impl Player {
    pub fn open(path: &Path, speed: Speed) -> Result<Player, RecordError> {
        let mut reader = Reader::open(path)?;
        let start = reader.header().started_at;
        let mut skipped = 0;
        let mut warnings = Vec::new();
        let pending = next_event(&mut reader, &mut skipped, &mut warnings);
        let (tx, rx) = mpsc::channel();
        let scan_path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(scan(&scan_path));
        });
        Ok(Player {
            path: path.to_path_buf(),
            reader,
            // The first event, not the header's time: a quiet start is not worth waiting through.
            start: pending.as_ref().map_or(start, |e| e.ts),
            position: pending.as_ref().map_or(start, |e| e.ts),
            pending,
            applied: 0,
            speed,
            paused: false,
            scan: Scan::default(),
            scanning: Some(rx),
            skipped,
            warnings,
        })
    }

    pub fn view(&self) -> ReplayView {
        ReplayView {
            file: self.path.display().to_string(),
            start: self.start,
            position: self.position,
            end: self.scan.end,
            applied: self.applied,
            total: self.scanning.is_none().then_some(self.scan.events),
            speed: self.speed,
            paused: self.paused,
            skipped: self.skipped,
            first_warning: self.warnings.first().cloned(),
        }
    }

    pub fn toggle_pause(&mut self) {
        self.paused = !self.paused;
    }

    pub fn change_speed(&mut self, faster: bool) {
        self.speed = self.speed.step(faster);
    }

    /// Let `elapsed` of real time pass at the current speed. True if the dashboard changed.
    pub fn advance(&mut self, dash: &mut Dashboard, elapsed: Duration) -> bool {
        self.poll_scan();
        if self.paused || self.pending.is_none() {
            return false;
        }
        if self.speed == Speed::Max {
            for _ in 0..MAX_PER_FRAME {
                if !self.apply_next(dash) {
                    break;
                }
            }
            dash.tick(self.position);
            return true;
        }
        let step = elapsed.as_secs_f64() * self.speed.factor();
        let target = self.position + TimeDelta::microseconds((step * 1e6) as i64);
        self.play_until(dash, target);
        true
    }

    /// Apply exactly one event and pause there.
    pub fn step(&mut self, dash: &mut Dashboard) {
        self.paused = true;
        self.apply_next(dash);
        dash.tick(self.position);
    }

    /// Go to a moment: forward by playing, backward by replaying from the start.
    pub fn seek(&mut self, dash: &mut Dashboard, target: DateTime<Utc>) -> Result<(), RecordError> {
        let target = target.max(self.start);
        if target < self.position {
            self.reader = Reader::open(&self.path)?;
            self.skipped = 0;
            self.warnings.clear();
            self.pending = next_event(&mut self.reader, &mut self.skipped, &mut self.warnings);
            self.applied = 0;
            self.position = self.start;
            *dash = Dashboard::new();
        }
        self.play_until(dash, target);
        Ok(())
    }

    /// Jump by a signed number of seconds.
    pub fn jump(&mut self, dash: &mut Dashboard, seconds: i64) -> Result<(), RecordError> {
        self.seek(dash, self.position + TimeDelta::seconds(seconds))
    }

    /// Jump to the next (or previous) failover or breaker change.
    pub fn jump_to_mark(
        &mut self,
        dash: &mut Dashboard,
        forward: bool,
    ) -> Result<bool, RecordError> {
        self.poll_scan();
        let here = self.position;
        let mark = if forward {
            self.scan.marks.iter().find(|m| **m > here).copied()
        } else {
            // Strictly before, with a little slack so pressing twice moves on.
            let before = here - TimeDelta::milliseconds(500);
            self.scan.marks.iter().rev().find(|m| **m < before).copied()
        };
        match mark {
            Some(m) => {
                self.seek(dash, m)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Apply every event up to `target` and move the clock there.
    fn play_until(&mut self, dash: &mut Dashboard, target: DateTime<Utc>) {
        while self.pending.as_ref().is_some_and(|e| e.ts <= target) {
            self.apply_next(dash);
        }
        // The clock stops at the end of the recording.
        let last = self.scan.end.filter(|_| self.pending.is_none());
        self.position = last.map_or(target, |end| target.min(end).max(self.position));
        dash.tick(self.position);
    }

    fn apply_next(&mut self, dash: &mut Dashboard) -> bool {
        let Some(event) = self.pending.take() else {
            return false;
        };
        dash.apply(&event);
        self.position = self.position.max(event.ts);
        self.applied += 1;
        self.pending = next_event(&mut self.reader, &mut self.skipped, &mut self.warnings);
        true
    }

    fn poll_scan(&mut self) {
        if let Some(rx) = &self.scanning
            && let Ok(scan) = rx.try_recv()
        {
            self.scan = scan;
            self.scanning = None;
        }
    }
}

/// The next readable event; unreadable lines are counted, the first few kept, and skipped.
fn next_event(reader: &mut Reader, skipped: &mut u64, warnings: &mut Vec<String>) -> Option<Event> {
    for item in reader.by_ref() {
        match item {
            Ok(event) => return Some(event),
            Err(e) => {
                *skipped += 1;
                if warnings.len() < WARNINGS_KEPT {
                    warnings.push(e.to_string());
                }
            }
        }
    }
    None
}

/// Read the whole file once: its last moment, its size, and where failovers and breaker changes
/// happened.
fn scan(path: &Path) -> Scan {
    let mut out = Scan::default();
    let Ok(reader) = Reader::open(path) else {
        return out;
    };
    for event in reader.flatten() {
        out.events += 1;
        out.end = Some(out.end.map_or(event.ts, |e| e.max(event.ts)));
        let mark = match &event.kind {
            EventKind::BreakerChanged { .. } | EventKind::Rewind { .. } => true,
            EventKind::RequestFinished { attempts, .. } => *attempts > 1,
            _ => false,
        };
        if mark && out.marks.len() < MARKS_KEPT {
            out.marks.push(event.ts);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_parse_and_step() {
        assert_eq!("2".parse::<Speed>(), Ok(Speed::Two));
        assert_eq!("×10".parse::<Speed>(), Ok(Speed::Ten));
        assert_eq!("max".parse::<Speed>(), Ok(Speed::Max));
        assert!("3".parse::<Speed>().is_err());
        assert_eq!(Speed::Ten.step(true), Speed::Max);
        assert_eq!(Speed::Max.step(true), Speed::Max);
        assert_eq!(Speed::Half.step(false), Speed::Half);
    }
}
