//! Playing a recording into the console. The dashboard is fed the recorded events under a virtual
//! clock, so every panel shows what it showed live at that moment, and the same position always
//! gives the same frame. The file is read as it plays, on a thread of its own a bounded way ahead
//! (memory stays bounded, and the console's loop never waits for the disk); jumping back re-reads
//! it from the start, and a background scan finds its length and the moments worth jumping to.
//!
//! Its marks are the moments worth jumping to: failovers (a request answered by another provider
//! than its primary, as the engine's [`FailoverTracker`] has it, marked when it moved to the provider
//! that answered), breaker changes, and operator actions. A jump to a mark pauses there, as a step
//! does; so does a 10 s jump at the `max` speed (playing on would run straight back to the end).
//!
//! A move (seek, step, jump) needs the events up to where it goes. The console's player
//! ([`Player::never_wait`]) carries a move on over the following frames while the reader catches up,
//! and its clock waits for events not yet read rather than running past them; elsewhere (tests,
//! tools) a move is done when its call returns.

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::dashboard::Dashboard;
use crate::event::facts::{FailoverTracker, KEY_BYTES, REQUESTS_TRACKED};
use crate::event::{BreakerState, Event, EventKind};
use crate::record::reader::{Reader, RecordError};
use crate::text::{cut, one_line};

/// Events folded per frame at the `max` speed, or towards a move: fast, yet the keyboard stays
/// answered.
const MAX_PER_FRAME: usize = 50_000;
/// Lines the reader sends at once, and the batches it may read ahead of the player.
const BATCH: usize = 256;
const BATCHES_AHEAD: usize = 64;
/// Marks of each kind (failovers, breaker changes, operator actions) kept.
const MARKS_KEPT: usize = 100_000;
/// Longest breaker-change reason a mark keeps.
const REASON_CHARS: usize = 200;
/// Providers remembered per running request, for where its failover is marked.
const STARTS_KEPT: usize = 16;
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

/// A request that failed over, marked at the moment it moved to the provider that answered it (its
/// last attempt there started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverMark {
    pub at: DateTime<Utc>,
    pub request_id: String,
    /// Its primary.
    pub from: String,
    /// The provider that answered.
    pub to: String,
}

/// A breaker changing state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerMark {
    pub at: DateTime<Utc>,
    pub provider: String,
    /// For a per-model breaker.
    pub model: Option<String>,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
}

/// The moments of a recording worth seeing, each list oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marks {
    pub failovers: Vec<FailoverMark>,
    pub breakers: Vec<BreakerMark>,
    pub operator_actions: Vec<DateTime<Utc>>,
}

/// The marks a jump goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    Failover,
    BreakerChange,
}

/// Where a jump to a mark went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    Failover(FailoverMark),
    Breaker(BreakerMark),
    /// No mark of that kind that way: the replay stays where it is.
    Nothing {
        kind: MarkKind,
        forward: bool,
    },
    /// The background scan has not finished: the marks are not known yet.
    NotYet,
}

impl Landed {
    /// A line for the status bar.
    pub fn describe(&self) -> String {
        match self {
            Landed::Failover(m) => format!("{} failed over: {} → {}", m.request_id, m.from, m.to),
            Landed::Breaker(m) => {
                let breaker = match &m.model {
                    Some(model) => format!("{}/{model}", m.provider),
                    None => m.provider.clone(),
                };
                format!("{breaker} breaker {} → {}: {}", m.from, m.to, m.reason)
            }
            Landed::Nothing { kind, forward } => {
                let what = match kind {
                    MarkKind::Failover => "failover",
                    MarkKind::BreakerChange => "breaker change",
                };
                let way = if *forward { "after" } else { "before" };
                format!("no {what} {way} this point")
            }
            Landed::NotYet => "still reading the file for its marks; try again in a moment".into(),
        }
    }
}

/// What the whole file holds, found by the background scan.
#[derive(Debug, Clone, Default)]
struct Scan {
    end: Option<DateTime<Utc>>,
    events: u64,
    marks: Arc<Marks>,
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
    /// A move (seek, step, jump) is still going on: the reader has not read far enough yet.
    pub moving: bool,
    /// Lines that could not be read (skipped), and the first of their messages.
    pub skipped: u64,
    pub first_warning: Option<String>,
    /// Empty while the scan is still reading the file.
    pub marks: Arc<Marks>,
}

/// Moves waiting for the reader to read far enough: a seek, then steps.
#[derive(Debug, Clone, Default, PartialEq)]
struct Moves {
    seek: Option<DateTime<Utc>>,
    steps: u32,
    /// The request whose reply is on screen, for what a step counts as a change ([`shows`]).
    reply: Option<String>,
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
            moving: self.moving.any(),
            skipped: self.feed.skipped,
            first_warning: self.feed.warnings.first().cloned(),
            marks: Arc::clone(&self.scan.marks),
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
    /// screen may have changed (the scan finishing changes the bar).
    pub fn advance(&mut self, dash: &mut Dashboard, elapsed: Duration) -> bool {
        let scanned = self.poll_scan();
        if self.moving.any() {
            self.carry_on(dash, false);
            return true;
        }
        if self.paused || self.feed.ended() {
            return scanned;
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

    /// Go on to the next event that changes the screen ([`shows`]: `reply` is the request whose
    /// reply is on it), applying those that change nothing on the way, and pause there.
    pub fn step(&mut self, dash: &mut Dashboard, reply: Option<String>) {
        self.paused = true;
        self.moving.steps = self.moving.steps.saturating_add(1);
        self.moving.reply = reply;
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
            ..Moves::default()
        };
        self.carry_on(dash, self.waits);
        Ok(())
    }

    /// Jump by a signed number of seconds from where the replay is going. At the `max` speed it
    /// pauses there: playing on would run straight to the end again.
    pub fn jump(&mut self, dash: &mut Dashboard, seconds: i64) -> Result<(), RecordError> {
        if self.speed == Speed::Max {
            self.paused = true;
        }
        self.seek(dash, self.goal() + TimeDelta::seconds(seconds))
    }

    /// Jump to the next (or previous) mark of a kind, and pause there.
    pub fn jump_to_mark(
        &mut self,
        dash: &mut Dashboard,
        kind: MarkKind,
        forward: bool,
    ) -> Result<Landed, RecordError> {
        self.poll_scan();
        if self.scanning.is_some() {
            return Ok(Landed::NotYet);
        }
        let here = self.goal();
        let marks = &self.scan.marks;
        let landed = match kind {
            MarkKind::Failover => nearest(&marks.failovers, |m| m.at, here, forward)
                .map(|m| (m.at, Landed::Failover(m.clone()))),
            MarkKind::BreakerChange => nearest(&marks.breakers, |m| m.at, here, forward)
                .map(|m| (m.at, Landed::Breaker(m.clone()))),
        };
        let Some((at, landed)) = landed else {
            return Ok(Landed::Nothing { kind, forward });
        };
        self.paused = true;
        self.seek(dash, at)?;
        Ok(landed)
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
        let mut budget = if wait { usize::MAX } else { MAX_PER_FRAME };
        while self.moving.steps > 0 && budget > 0 {
            let shown = match self.feed.peek(wait) {
                Some(next) => shows(dash, self.moving.reply.as_deref(), next),
                None => {
                    // The end of the file (or not read yet: go on next frame).
                    if self.feed.ended() {
                        self.moving.steps = 0;
                    }
                    break;
                }
            };
            self.apply_next(dash, wait);
            budget -= 1;
            if shown {
                self.moving.steps -= 1;
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
        // The clock stops at the end of the recording: its last event, once every one is applied.
        if !self.feed.ended() {
            self.position = target.max(self.position);
        }
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

    /// Take the scan's result if it has come; true when it just did.
    fn poll_scan(&mut self) -> bool {
        if let Some(rx) = &self.scanning
            && let Ok(scan) = rx.try_recv()
        {
            self.scan = scan;
            self.scanning = None;
            return true;
        }
        false
    }
}

/// Whether applying `event` changes what the screen shows, `reply` being the request whose reply
/// is on it (the one picked, else the newest). Every event changes some panel — a log line, a
/// request's row, a provider's row, a count — but for text: a text delta changes the screen only
/// when it adds to the reply on it (its request's, not empty, the reply not yet cut at its kept
/// length), or names a provider with no row yet. The clock moving on is not counted as a change.
pub fn shows(dash: &Dashboard, reply: Option<&str>, event: &Event) -> bool {
    let EventKind::TextDelta {
        request_id,
        provider,
        text,
    } = &event.kind
    else {
        return true;
    };
    if dash.provider(provider).is_none() {
        return true;
    }
    reply == Some(request_id.as_str())
        && !text.is_empty()
        && dash.request(request_id).is_some_and(|r| !r.text_truncated)
}

/// The first mark after `here` (`forward`) or the last before it, of marks sorted by `at`.
fn nearest<T>(
    marks: &[T],
    at: impl Fn(&T) -> DateTime<Utc>,
    here: DateTime<Utc>,
    forward: bool,
) -> Option<&T> {
    if forward {
        marks.get(marks.partition_point(|m| at(m) <= here))
    } else {
        let before = marks.partition_point(|m| at(m) < here);
        before.checked_sub(1).and_then(|i| marks.get(i))
    }
}

/// Read the whole file once: its last moment, its size, and its marks.
fn scan(path: &Path) -> Scan {
    let mut scanner = Scanner::default();
    if let Ok(reader) = Reader::open(path) {
        for event in reader.flatten() {
            scanner.feed(&event);
        }
    }
    scanner.finish()
}

/// The scan's fold.
#[derive(Default)]
struct Scanner {
    end: Option<DateTime<Utc>>,
    events: u64,
    marks: Marks,
    /// Which requests failed over: the engine's own definition.
    failovers: FailoverTracker,
    /// Each running request's latest attempt start on each provider (where its failover is marked).
    starts: HashMap<String, Vec<(String, DateTime<Utc>)>>,
}

impl Scanner {
    fn feed(&mut self, event: &Event) {
        self.events += 1;
        self.end = Some(self.end.map_or(event.ts, |e| e.max(event.ts)));
        let marks = &mut self.marks;
        match &event.kind {
            EventKind::AttemptStarted {
                request_id,
                provider,
                ..
            } => self.started(request_id, provider, event.ts),
            EventKind::BreakerChanged {
                provider,
                model,
                from,
                to,
                reason,
                ..
            } if marks.breakers.len() < MARKS_KEPT => marks.breakers.push(BreakerMark {
                at: event.ts,
                provider: cut(provider, KEY_BYTES).to_string(),
                model: model.as_deref().map(|m| cut(m, KEY_BYTES).to_string()),
                from: *from,
                to: *to,
                reason: one_line(reason, REASON_CHARS),
            }),
            EventKind::OperatorAction { .. } if marks.operator_actions.len() < MARKS_KEPT => {
                marks.operator_actions.push(event.ts);
            }
            EventKind::RequestFinished { request_id, .. } => {
                let starts = self.starts.remove(cut(request_id, KEY_BYTES));
                self.finished(event, starts.unwrap_or_default());
            }
            _ => {}
        }
        if matches!(event.kind, EventKind::RequestStarted { .. }) {
            self.failovers.apply(&event.kind);
        }
    }

    fn started(&mut self, request_id: &str, provider: &str, at: DateTime<Utc>) {
        let id = cut(request_id, KEY_BYTES);
        let provider = cut(provider, KEY_BYTES);
        // Past its bound a request's failover is marked when it finishes instead.
        if !self.starts.contains_key(id) && self.starts.len() >= REQUESTS_TRACKED {
            return;
        }
        let starts = self.starts.entry(id.to_string()).or_default();
        if let Some((_, t)) = starts.iter_mut().find(|(p, _)| p == provider) {
            *t = at;
        } else if starts.len() < STARTS_KEPT {
            starts.push((provider.to_string(), at));
        }
    }

    /// A request finished: a failover mark if it failed over, where it moved to the provider that
    /// answered.
    fn finished(&mut self, event: &Event, starts: Vec<(String, DateTime<Utc>)>) {
        let EventKind::RequestFinished { request_id, .. } = &event.kind else {
            return;
        };
        let Some(failed_over) = self.failovers.apply(&event.kind) else {
            return;
        };
        if self.marks.failovers.len() >= MARKS_KEPT {
            return;
        }
        let to = cut(failed_over.to, KEY_BYTES);
        let at = starts
            .iter()
            .find(|(p, _)| p == to)
            .map_or(event.ts, |(_, t)| *t);
        self.marks.failovers.push(FailoverMark {
            at,
            request_id: cut(request_id, KEY_BYTES).to_string(),
            from: failed_over.from,
            to: to.to_string(),
        });
    }

    fn finish(mut self) -> Scan {
        // Failovers are marked when they moved, not in the order they finished.
        self.marks.failovers.sort_by_key(|m| m.at);
        self.marks.breakers.sort_by_key(|m| m.at);
        self.marks.operator_actions.sort();
        Scan {
            end: self.end,
            events: self.events,
            marks: Arc::new(self.marks),
        }
    }
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

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A recording of `n` operator actions a second apart, in a fresh file.
    fn recording(name: &str, n: i64) -> PathBuf {
        use crate::event::OperatorAction;
        let t0 = t0();
        let events = (0..n).map(|i| Event {
            ts: t0 + TimeDelta::seconds(i),
            seq: i as u64 + 1,
            kind: EventKind::OperatorAction {
                action: OperatorAction::Trip,
                provider: Some("a".into()),
                detail: i.to_string(),
                instance: None,
            },
            gateway: None,
        });
        write_recording(name, events)
    }

    /// A recording of events given as (milliseconds from `t0`, the event's JSON after its `type`).
    fn recording_of(name: &str, lines: &[(i64, &str)]) -> PathBuf {
        let events = lines.iter().enumerate().map(|(i, (ms, body))| {
            let ts = (t0() + TimeDelta::milliseconds(*ms))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let json = format!(r#"{{"ts":"{ts}","seq":{},{body}}}"#, i + 1);
            serde_json::from_str::<Event>(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
        });
        write_recording(name, events)
    }

    fn write_recording(name: &str, events: impl Iterator<Item = Event>) -> PathBuf {
        use crate::event::Mode;
        use crate::record::{FORMAT, RECORDING_VERSION, SessionHeader};
        use std::io::Write;
        let t0 = t0();
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
        for event in events {
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
        waiting.step(&mut wd, None);
        console.jump(&mut cd, -1_000).unwrap();
        console.step(&mut cd, None);
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

    fn started(id: &str) -> String {
        format!(r#""type":"request_started","request_id":"{id}","source":"load","chain":["a","b"]"#)
    }

    fn attempt(id: &str, n: u32, provider: &str) -> String {
        format!(
            r#""type":"attempt_started","request_id":"{id}","attempt":{n},"provider":"{provider}","model":"m""#
        )
    }

    fn failed(id: &str, n: u32, provider: &str) -> String {
        format!(
            r#""type":"attempt_failed","request_id":"{id}","attempt":{n},"provider":"{provider}","phase":"headers","class":"overloaded","retryable":true,"status":529,"message":"Overloaded","elapsed_ms":1"#
        )
    }

    fn first(id: &str, n: u32, provider: &str) -> String {
        format!(
            r#""type":"first_event","request_id":"{id}","attempt":{n},"provider":"{provider}","latency_ms":100"#
        )
    }

    fn delta(id: &str, provider: &str, text: &str) -> String {
        format!(
            r#""type":"text_delta","request_id":"{id}","provider":"{provider}","text":"{text}""#
        )
    }

    fn finished(id: &str, outcome: &str, provider: &str, attempts: u32) -> String {
        format!(
            r#""type":"request_finished","request_id":"{id}","outcome":"{outcome}","provider":"{provider}","total_ms":1,"cost_usd":0.0,"attempts":{attempts},"failed_cost_usd":0.0"#
        )
    }

    fn breaker(from: &str, to: &str) -> String {
        format!(
            r#""type":"breaker_changed","provider":"a","from":"{from}","to":"{to}","reason":"why""#
        )
    }

    fn at(ms: i64) -> DateTime<Utc> {
        t0() + TimeDelta::milliseconds(ms)
    }

    /// A player whose scan has finished.
    fn scanned(path: &Path) -> (Player, Dashboard) {
        let mut player = Player::open(path, Speed::One).unwrap();
        let mut dash = Dashboard::new();
        frames_until(&mut player, &mut dash, |p| p.scanning.is_none());
        (player, dash)
    }

    /// r1 retries on its primary (no failover), r2 moves to b after a failure, r3 skips its
    /// primary, r4 fails everywhere; a's breaker opens, then the operator trips it.
    fn incident() -> PathBuf {
        let trip = r#""type":"operator_action","action":"trip","provider":"a","detail":"""#;
        let skipped =
            r#""type":"attempt_skipped","request_id":"r3","provider":"a","reason":"breaker_open""#;
        let lines: Vec<(i64, String)> = vec![
            (0, started("r1")),
            (0, attempt("r1", 1, "a")),
            (100, failed("r1", 1, "a")),
            (600, attempt("r1", 2, "a")),
            (900, finished("r1", "ok", "a", 2)),
            (1_000, started("r2")),
            (1_000, attempt("r2", 1, "a")),
            (1_100, failed("r2", 1, "a")),
            (1_200, attempt("r2", 2, "b")),
            (1_300, first("r2", 2, "b")),
            (2_000, finished("r2", "ok", "b", 2)),
            (2_500, breaker("closed", "open")),
            (3_000, started("r3")),
            (3_000, skipped.to_string()),
            (3_000, attempt("r3", 1, "b")),
            (3_500, finished("r3", "ok", "b", 1)),
            (3_600, started("r4")),
            (3_600, attempt("r4", 1, "b")),
            (3_700, failed("r4", 1, "b")),
            (3_800, finished("r4", "error", "b", 1)),
            (4_000, trip.to_string()),
            (4_000, breaker("open", "forced_open")),
            (5_000, started("r5")),
        ];
        let lines: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        recording_of("incident.jsonl", &lines)
    }

    /// A failover is the engine's: a request answered by another provider than its primary (a
    /// retry on the primary is none, nor a request that failed everywhere), marked when it moved.
    #[test]
    fn marks_are_failovers_breaker_changes_and_operator_actions() {
        let (player, _) = scanned(&incident());
        let marks = player.view().marks;
        let failovers: Vec<_> = marks
            .failovers
            .iter()
            .map(|m| (m.at, m.request_id.as_str(), m.from.as_str(), m.to.as_str()))
            .collect();
        assert_eq!(
            failovers,
            [(at(1_200), "r2", "a", "b"), (at(3_000), "r3", "a", "b")]
        );
        let breakers: Vec<_> = marks.breakers.iter().map(|m| (m.at, m.to)).collect();
        assert_eq!(
            breakers,
            [
                (at(2_500), BreakerState::Open),
                (at(4_000), BreakerState::ForcedOpen)
            ]
        );
        assert_eq!(marks.operator_actions, [at(4_000)]);
    }

    /// `]` and `[` go from failover to failover, `}` and `{` from breaker change to breaker
    /// change; each pauses where it lands, and says so when there is none that way.
    #[test]
    fn jumps_go_to_their_own_marks_and_pause() {
        let (mut p, mut d) = scanned(&incident());
        assert!(!p.view().paused);
        let landed = p.jump_to_mark(&mut d, MarkKind::Failover, true).unwrap();
        let Landed::Failover(m) = &landed else {
            panic!("{landed:?}");
        };
        assert_eq!(
            (m.request_id.as_str(), p.view().position),
            ("r2", at(1_200))
        );
        assert!(p.view().paused, "a jump pauses");
        assert_eq!(landed.describe(), "r2 failed over: a → b");
        // There, r2's attempt on b has started.
        let r2 = d.request("r2").unwrap();
        assert_eq!(r2.attempts.last().map(|a| a.provider.as_str()), Some("b"));

        let landed = p
            .jump_to_mark(&mut d, MarkKind::BreakerChange, true)
            .unwrap();
        assert!(matches!(landed, Landed::Breaker(ref m) if m.to == BreakerState::Open));
        assert_eq!(p.view().position, at(2_500));
        assert_eq!(landed.describe(), "a breaker closed → open: why");
        let landed = p.jump_to_mark(&mut d, MarkKind::Failover, true).unwrap();
        assert!(matches!(landed, Landed::Failover(ref m) if m.request_id == "r3"));
        let none = p.jump_to_mark(&mut d, MarkKind::Failover, true).unwrap();
        assert_eq!(none.describe(), "no failover after this point");
        assert_eq!(p.view().position, at(3_000), "stays where it was");
        let landed = p
            .jump_to_mark(&mut d, MarkKind::BreakerChange, true)
            .unwrap();
        assert!(matches!(landed, Landed::Breaker(ref m) if m.to == BreakerState::ForcedOpen));
        // Back, replaying from the start.
        let landed = p.jump_to_mark(&mut d, MarkKind::Failover, false).unwrap();
        assert!(matches!(landed, Landed::Failover(ref m) if m.request_id == "r3"));
        let landed = p.jump_to_mark(&mut d, MarkKind::Failover, false).unwrap();
        assert!(matches!(landed, Landed::Failover(ref m) if m.request_id == "r2"));
        assert_eq!(p.view().position, at(1_200));
        assert!(d.request("r3").is_none(), "replayed from the start");
        let none = p
            .jump_to_mark(&mut d, MarkKind::BreakerChange, false)
            .unwrap();
        assert_eq!(none.describe(), "no breaker change before this point");
    }

    /// Two replies streaming at once: a step goes past the deltas of the one not on screen (and
    /// an empty one), and stops on the next that adds to the reply shown, or on any other event.
    #[test]
    fn a_step_goes_on_to_the_next_change_on_screen() {
        let lines: Vec<(i64, String)> = vec![
            (0, started("r1")),
            (0, attempt("r1", 1, "a")),
            (10, first("r1", 1, "a")),
            (20, started("r2")),
            (20, attempt("r2", 1, "b")),
            (30, first("r2", 1, "b")),
            (100, delta("r1", "a", "one ")),
            (110, delta("r2", "b", "uno ")),
            (120, delta("r1", "a", "two ")),
            (130, delta("r1", "a", "")),
            (140, delta("r1", "a", "three ")),
            (150, delta("r2", "b", "")),
            (160, delta("r2", "b", "dos ")),
            (170, delta("r1", "a", "four ")),
            (180, delta("r1", "a", "five ")),
            (200, finished("r1", "ok", "a", 1)),
            (210, delta("r2", "b", "tres ")),
            (220, delta("c", "c", "new provider")),
        ];
        let lines: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
        let path = recording_of("step.jsonl", &lines);
        let (mut p, mut d) = scanned(&path);
        p.seek(&mut d, at(30)).unwrap();
        assert_eq!(p.view().applied, 6);
        // The newest, r2, is on screen: r1's deltas change nothing there.
        let r2 = Some("r2".to_string());
        p.step(&mut d, r2.clone());
        assert_eq!((p.view().position, p.view().applied), (at(110), 8));
        assert!(p.view().paused);
        p.step(&mut d, r2.clone());
        assert_eq!(
            (p.view().position, d.request("r2").unwrap().text.as_str()),
            (at(160), "uno dos ")
        );
        assert_eq!(
            d.request("r1").unwrap().text,
            "one two three ",
            "applied on the way"
        );
        // Another request's finishing is on screen (its row), whoever's reply is shown.
        p.step(&mut d, r2.clone());
        assert_eq!(p.view().position, at(200));
        // With r1 picked, r2's text changes nothing; a provider with no row yet does.
        p.step(&mut d, Some("r1".into()));
        assert_eq!(p.view().position, at(220));
        assert!(d.provider("c").is_some());
        // At the end, a step stays there.
        p.step(&mut d, r2);
        assert_eq!((p.view().position, p.view().applied), (at(220), 18));
        assert!(!p.moving.any());
    }

    /// At the `max` speed the bar learns the recording's length as soon as the scan has it, not at
    /// the next key; and 10 s back pauses there instead of running straight to the end again.
    #[test]
    fn at_max_speed_the_length_shows_and_back_stays_back() {
        let path = recording("max.jsonl", 100);
        let mut p = Player::open(&path, Speed::Max).unwrap();
        let mut d = Dashboard::new();
        p.never_wait();
        p.toggle_pause();
        // Paused, nothing changes but the scan's arrival, which must redraw.
        let mut redraws = Vec::new();
        for _ in 0..500 {
            let known = p.view().end.is_some();
            redraws.push(p.advance(&mut d, Duration::ZERO));
            if !known && p.view().end.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            redraws.last(),
            Some(&true),
            "the frame the scan arrives in redraws"
        );
        assert!(redraws.iter().rev().skip(1).all(|r| !r));
        p.toggle_pause();
        frames_until(&mut p, &mut d, |p| p.feed.ended());
        let end = at(99_000);
        assert_eq!((p.view().position, p.view().end), (end, Some(end)));
        assert!(!p.advance(&mut d, Duration::ZERO), "the end: nothing more");

        p.jump(&mut d, -10).unwrap();
        frames_until(&mut p, &mut d, |p| !p.moving.any());
        assert!(p.view().paused, "back at max speed pauses");
        for _ in 0..20 {
            p.advance(&mut d, Duration::from_millis(16));
        }
        assert_eq!(p.view().position, at(89_000), "and stays back");
        // At ×1 a jump plays on.
        p.change_speed(false);
        p.toggle_pause();
        p.jump(&mut d, -10).unwrap();
        frames_until(&mut p, &mut d, |p| !p.moving.any());
        assert!(!p.view().paused);
    }

    #[test]
    fn only_text_that_adds_to_the_reply_on_screen_is_a_change() {
        let mut d = Dashboard::new();
        let event = |body: &str| {
            let json = format!(r#"{{"ts":"2026-01-01T12:00:00.000Z","seq":1,{body}}}"#);
            serde_json::from_str::<Event>(&json).unwrap()
        };
        d.apply(&event(&started("r1")));
        d.apply(&event(&attempt("r1", 1, "a")));
        let text = event(&delta("r1", "a", "hi"));
        assert!(shows(&d, Some("r1"), &text));
        assert!(!shows(&d, Some("r2"), &text));
        assert!(!shows(&d, None, &text));
        assert!(!shows(&d, Some("r1"), &event(&delta("r1", "a", ""))));
        assert!(
            shows(&d, None, &event(&delta("r1", "z", "hi"))),
            "a new provider row"
        );
        assert!(shows(&d, None, &event(&attempt("r1", 2, "a"))));
    }
}
