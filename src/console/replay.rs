//! Playing a recording into the console. The dashboard is fed the recorded events under a virtual
//! clock, so every panel shows what it showed live at that moment, and the same position always
//! gives the same frame. The file is read as it plays, on a thread of its own a bounded way ahead
//! (memory stays bounded, and the console's loop never waits for the disk); jumping back re-reads
//! it from the start, and a background scan finds its length and the moments worth jumping to.
//!
//! A move (seek, step, jump) needs the events up to where it goes. The console's player
//! ([`Player::never_wait`]) carries a move on over the following frames while the reader catches up,
//! and its clock waits for events not yet read rather than running past them; elsewhere (tests,
//! tools) a move is done when its call returns.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::dashboard::Dashboard;
use crate::event::{Event, EventKind};
use crate::record::reader::{Reader, RecordError};

/// Events folded per frame at the `max` speed, or towards a move: fast, yet the keyboard stays
/// answered.
const MAX_PER_FRAME: usize = 50_000;
/// Lines the reader sends at once, and the batches it may read ahead of the player.
const BATCH: usize = 256;
const BATCHES_AHEAD: usize = 64;
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

/// Moves waiting for the reader to read far enough: a seek, then steps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Moves {
    seek: Option<DateTime<Utc>>,
    steps: u32,
}

impl Moves {
    fn any(&self) -> bool {
        self.seek.is_some() || self.steps > 0
    }
}

/// One line as the reader thread read it.
enum Read {
    Event(Event),
    /// A line that could not be read, and why (it is skipped).
    Unreadable(String),
    /// The file could not be opened again (to jump back).
    Failed(String),
}

/// One pass over the file: its reader thread, and what it has read that the player has not used.
struct Feed {
    rx: mpsc::Receiver<Vec<Read>>,
    ready: VecDeque<Event>,
    /// The reader has sent its last line.
    closed: bool,
    skipped: u64,
    warnings: Vec<String>,
    failed: Option<String>,
}

impl Feed {
    /// Read `reader` (already open) or, without one, the file at `path` opened anew.
    fn start(path: &Path, reader: Option<Reader>) -> Feed {
        let (tx, rx) = mpsc::sync_channel(BATCHES_AHEAD);
        let path = path.to_path_buf();
        std::thread::spawn(move || read_ahead(&path, reader, &tx));
        Feed {
            rx,
            ready: VecDeque::new(),
            closed: false,
            skipped: 0,
            warnings: Vec::new(),
            failed: None,
        }
    }

    /// The next event, once read; `wait` waits for the reader, otherwise `None` may only mean
    /// "not read yet" (see [`Feed::ended`]).
    fn peek(&mut self, wait: bool) -> Option<&Event> {
        while self.ready.is_empty() && !self.closed {
            let batch = if wait {
                self.rx.recv().ok()
            } else {
                match self.rx.try_recv() {
                    Ok(batch) => Some(batch),
                    Err(mpsc::TryRecvError::Empty) => return None,
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            };
            match batch {
                Some(batch) => self.take(batch),
                None => self.closed = true,
            }
        }
        self.ready.front()
    }

    fn pop(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    /// Every event of the file has been used.
    fn ended(&self) -> bool {
        self.closed && self.ready.is_empty()
    }

    fn take(&mut self, batch: Vec<Read>) {
        for read in batch {
            match read {
                Read::Event(event) => self.ready.push_back(event),
                Read::Unreadable(why) => self.warn(why),
                Read::Failed(why) => self.failed = Some(why),
            }
        }
    }

    /// An unreadable line: counted, the first few kept.
    fn warn(&mut self, why: String) {
        self.skipped += 1;
        if self.warnings.len() < WARNINGS_KEPT {
            self.warnings.push(why);
        }
    }
}

/// The reader thread: batches of lines until the file ends or the player stops listening.
fn read_ahead(path: &Path, reader: Option<Reader>, tx: &mpsc::SyncSender<Vec<Read>>) {
    let reader = match reader.map_or_else(|| Reader::open(path), Ok) {
        Ok(reader) => reader,
        Err(e) => {
            let _ = tx.send(vec![Read::Failed(e.to_string())]);
            return;
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    for item in reader {
        batch.push(match item {
            Ok(event) => Read::Event(event),
            Err(e) => Read::Unreadable(e.to_string()),
        });
        if batch.len() == BATCH && tx.send(std::mem::take(&mut batch)).is_err() {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
}

pub struct Player {
    path: PathBuf,
    feed: Feed,
    start: DateTime<Utc>,
    position: DateTime<Utc>,
    applied: u64,
    speed: Speed,
    paused: bool,
    scan: Scan,
    scanning: Option<mpsc::Receiver<Scan>>,
    /// Moves not done yet: the reader has not read far enough.
    moving: Moves,
    /// Moves are done before their call returns (off in the console: [`Player::never_wait`]).
    waits: bool,
}

impl Player {
    /// Open a recording: its header is checked and its first event read here (so a bad file is
    /// refused at once); the rest is read on a thread of its own.
    pub fn open(path: &Path, speed: Speed) -> Result<Player, RecordError> {
        let mut reader = Reader::open(path)?;
        let header_start = reader.header().started_at;
        let mut skipped = Vec::new();
        let mut first = None;
        for item in reader.by_ref() {
            match item {
                Ok(event) => {
                    first = Some(event);
                    break;
                }
                Err(e) => skipped.push(e.to_string()),
            }
        }
        let mut feed = Feed::start(path, Some(reader));
        for why in skipped {
            feed.warn(why);
        }
        // The first event, not the header's time: a quiet start is not worth waiting through.
        let start = first.as_ref().map_or(header_start, |e| e.ts);
        feed.ready.extend(first);
        let (tx, rx) = mpsc::channel();
        let scan_path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(scan(&scan_path));
        });
        Ok(Player {
            path: path.to_path_buf(),
            feed,
            start,
            position: start,
            applied: 0,
            speed,
            paused: false,
            scan: Scan::default(),
            scanning: Some(rx),
            moving: Moves::default(),
            waits: true,
        })
    }

    /// Never wait for the disk: a move the reader has not read far enough for goes on over the
    /// following calls of [`Player::advance`]. The console's loop plays this way.
    pub fn never_wait(&mut self) {
        self.waits = false;
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
            skipped: self.feed.skipped,
            first_warning: self.feed.warnings.first().cloned(),
        }
    }

    pub fn toggle_pause(&mut self) {
        self.paused = !self.paused;
    }

    pub fn change_speed(&mut self, faster: bool) {
        self.speed = self.speed.step(faster);
    }

    /// Why the file could not be read again (to jump back), once.
    pub fn take_error(&mut self) -> Option<String> {
        self.feed.failed.take()
    }

    /// Let `elapsed` of real time pass at the current speed, or carry on a move. True if the
    /// dashboard may have changed.
    pub fn advance(&mut self, dash: &mut Dashboard, elapsed: Duration) -> bool {
        self.poll_scan();
        if self.moving.any() {
            self.carry_on(dash, false);
            return true;
        }
        if self.paused || self.feed.ended() {
            return false;
        }
        if self.speed == Speed::Max {
            for _ in 0..MAX_PER_FRAME {
                if !self.apply_next(dash, false) {
                    break;
                }
            }
            dash.tick(self.position);
            return true;
        }
        let step = elapsed.as_secs_f64() * self.speed.factor();
        let target = self.position + TimeDelta::microseconds((step * 1e6) as i64);
        self.play_until(dash, target, false);
        true
    }

    /// Apply exactly one event (after any move still going on) and pause there.
    pub fn step(&mut self, dash: &mut Dashboard) {
        self.paused = true;
        self.moving.steps = self.moving.steps.saturating_add(1);
        self.carry_on(dash, self.waits);
    }

    /// Go to a moment: forward by playing, backward by replaying from the start.
    pub fn seek(&mut self, dash: &mut Dashboard, target: DateTime<Utc>) -> Result<(), RecordError> {
        let target = target.max(self.start);
        if target < self.position {
            // Opened here when the player may wait, so that a file gone since is an error at once.
            let reader = if self.waits {
                Some(Reader::open(&self.path)?)
            } else {
                None
            };
            self.feed = Feed::start(&self.path, reader);
            self.applied = 0;
            self.position = self.start;
            *dash = Dashboard::new();
        }
        // Where the operator wants to be now: steps asked for before are overtaken.
        self.moving = Moves {
            seek: Some(target),
            steps: 0,
        };
        self.carry_on(dash, self.waits);
        Ok(())
    }

    /// Jump by a signed number of seconds from where the replay is going.
    pub fn jump(&mut self, dash: &mut Dashboard, seconds: i64) -> Result<(), RecordError> {
        self.seek(dash, self.goal() + TimeDelta::seconds(seconds))
    }

    /// Jump to the next (or previous) failover or breaker change.
    pub fn jump_to_mark(
        &mut self,
        dash: &mut Dashboard,
        forward: bool,
    ) -> Result<bool, RecordError> {
        self.poll_scan();
        let here = self.goal();
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

    /// Where the replay is going: a seek's target, else where it is.
    fn goal(&self) -> DateTime<Utc> {
        self.moving.seek.unwrap_or(self.position)
    }

    /// Carry the moves on, as far as what has been read allows (or, with `wait`, to their end).
    fn carry_on(&mut self, dash: &mut Dashboard, wait: bool) {
        if let Some(target) = self.moving.seek {
            if !self.play_until(dash, target, wait) {
                return;
            }
            self.moving.seek = None;
        }
        while self.moving.steps > 0 {
            if self.apply_next(dash, wait) {
                self.moving.steps -= 1;
            } else if self.feed.ended() {
                self.moving.steps = 0;
            } else {
                break;
            }
        }
        dash.tick(self.position);
    }

    /// Apply every event up to `target` and move the clock there. False when it stopped short:
    /// the next events are not read yet (without `wait`), or there were too many for one frame.
    /// The clock then stays at the last event applied, never running past events it has not seen.
    fn play_until(&mut self, dash: &mut Dashboard, target: DateTime<Utc>, wait: bool) -> bool {
        let budget = if wait { usize::MAX } else { MAX_PER_FRAME };
        let mut applied = 0;
        loop {
            match self.feed.peek(wait).map(|next| next.ts) {
                Some(ts) if ts > target => break,
                Some(_) if applied < budget => {
                    self.apply_next(dash, wait);
                    applied += 1;
                }
                None if self.feed.ended() => break,
                // Not read yet, or enough for this frame.
                _ => {
                    dash.tick(self.position);
                    return false;
                }
            }
        }
        // The clock stops at the end of the recording.
        let last = self.scan.end.filter(|_| self.feed.ended());
        self.position = last.map_or(target, |end| target.min(end).max(self.position));
        dash.tick(self.position);
        true
    }

    /// Apply the next event, if it has been read (or, with `wait`, once it is).
    fn apply_next(&mut self, dash: &mut Dashboard, wait: bool) -> bool {
        if self.feed.peek(wait).is_none() {
            return false;
        }
        let Some(event) = self.feed.pop() else {
            return false;
        };
        dash.apply(&event);
        self.position = self.position.max(event.ts);
        self.applied += 1;
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

    /// A recording of `n` operator actions a second apart, in a fresh file.
    fn recording(name: &str, n: i64) -> PathBuf {
        use crate::event::{Mode, OperatorAction};
        use crate::record::{FORMAT, RECORDING_VERSION, SessionHeader};
        use std::io::Write;
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let header = SessionHeader {
            format: FORMAT.to_string(),
            format_version: RECORDING_VERSION,
            breakerbox_version: "test".to_string(),
            started_at: t0,
            mode: Mode::Demo,
            providers: vec![],
            config: serde_json::Value::Null,
            redacted: false,
        };
        let dir = std::env::temp_dir().join(format!("bb-player-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let mut file = std::fs::File::create(&path).unwrap();
        writeln!(file, "{}", serde_json::to_string(&header).unwrap()).unwrap();
        for i in 0..n {
            let event = Event {
                ts: t0 + TimeDelta::seconds(i),
                seq: i as u64 + 1,
                kind: EventKind::OperatorAction {
                    action: OperatorAction::Trip,
                    provider: Some("a".into()),
                    detail: i.to_string(),
                },
            };
            writeln!(file, "{}", serde_json::to_string(&event).unwrap()).unwrap();
        }
        path
    }

    /// Frames until `done`, as the console's loop would call the player (at most a few seconds).
    fn frames_until(player: &mut Player, dash: &mut Dashboard, done: impl Fn(&Player) -> bool) {
        for _ in 0..500 {
            if done(player) {
                return;
            }
            player.advance(dash, Duration::ZERO);
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the move never finished: {:?}", player.view());
    }

    /// The console's player never waits: its moves finish over frames, and land where a waiting
    /// player's land at once.
    #[test]
    fn a_player_that_never_waits_lands_where_a_waiting_one_does() {
        let path = recording("moves.jsonl", 2_000);
        let mut waiting = Player::open(&path, Speed::One).unwrap();
        let mut wd = Dashboard::new();
        waiting.toggle_pause();
        let mut console = Player::open(&path, Speed::One).unwrap();
        let mut cd = Dashboard::new();
        console.never_wait();
        console.toggle_pause();

        let target = waiting.start + TimeDelta::seconds(1_500);
        waiting.seek(&mut wd, target).unwrap();
        assert_eq!(waiting.view().applied, 1_501);
        console.seek(&mut cd, target).unwrap();
        frames_until(&mut console, &mut cd, |p| !p.moving.any());
        // Where each stands; how much of the file each reader has read so far (`end`, `total`)
        // is the reader thread's pace, not the player's.
        let at = |v: ReplayView| (v.position, v.applied, v.paused, v.skipped);
        assert_eq!(at(console.view()), at(waiting.view()));
        assert_eq!(format!("{cd:?}"), format!("{wd:?}"));

        // Back (the file is read again on its own thread), then a step.
        waiting.jump(&mut wd, -1_000).unwrap();
        waiting.step(&mut wd);
        console.jump(&mut cd, -1_000).unwrap();
        console.step(&mut cd);
        frames_until(&mut console, &mut cd, |p| !p.moving.any());
        assert_eq!(waiting.view().applied, 502);
        assert_eq!(console.view().applied, 502);
        assert_eq!(console.view().position, waiting.view().position);
        assert_eq!(format!("{cd:?}"), format!("{wd:?}"));

        // Playing at max speed reaches the end, a frame at a time.
        console.toggle_pause();
        console.change_speed(true);
        console.change_speed(true);
        console.change_speed(true);
        assert_eq!(console.view().speed, Speed::Max);
        frames_until(&mut console, &mut cd, |p| p.feed.ended());
        assert_eq!(console.view().applied, 2_000);
    }
}
