//! `breakerbox attach URL URL …`: one console over a fleet of gateways.
//!
//! Each member has a reader task of its own (connect, read `/events`, reconnect with backoff), so
//! a member that is slow, gone or never answers holds up nobody: it is shown down, with why, and
//! tried again. Readers stamp each event with the member's name (`Event::gateway`) and prefix
//! its request id with it (`gw-a/r12`: two gateways' `r12` are two requests), and skip what a
//! reconnection to the same gateway session sends again (the session, snapshot and recent events
//! it sent before, by `seq`): each event reaches the console once, so nothing is counted twice.
//!
//! A merger task puts the members' events in time order: it holds each one for
//! [`Options::merge_window`] and lets them go oldest first (members that connect together send
//! their recent history together, and it comes out interleaved by time), numbering them with the
//! fleet's own `seq`. The console folds them as it would one gateway's (see
//! `console/dashboard/fleet.rs` for what a fleet's rows show).
//!
//! Commands go to every member's `/control` at once ([`FleetControl`]); the status bar says how
//! many took it, and which did not and why. A prompt goes to one member (the first connected).

use chrono::{DateTime, Utc};
use color_eyre::eyre::{Result, bail};
use futures::StreamExt;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::{
    EVENT_CAPACITY, Gateway, Health, MAX_EVENT_BYTES, Options, Reader, exchange, health, human,
    open_events,
};
use crate::console::app::{App, Control, Note};
use crate::console::dashboard::{Dashboard, MEMBERS_KEPT, MemberLink};
use crate::console::keys::Bindings;
use crate::console::ui::Ui;
use crate::event::{Event, EventKind};
use crate::provider::sse::{Decoder, SseEvent, SseItem};
use crate::session::Command;

/// Events a member's reader may have ahead of the merger before it waits (that member only).
const MEMBER_QUEUE: usize = 4096;
/// Events the merger holds at most, whatever their age (a burst beyond it goes out at once).
const HELD_MOST: usize = 50_000;
/// The longest member name kept.
const NAME_CHARS: usize = 40;

/// One member as given: `URL` or `NAME=URL`, and its token (else the fleet's).
#[derive(Clone)]
pub struct MemberSpec {
    pub name: Option<String>,
    pub url: String,
    pub token: Option<String>,
}

impl fmt::Debug for MemberSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberSpec")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl MemberSpec {
    /// `URL`, or `NAME=URL` where NAME is letters, digits, `-`, `_` and `.`.
    pub fn parse(spec: &str) -> Result<MemberSpec> {
        let spec = spec.trim();
        let (name, url) = match spec.split_once('=') {
            Some((name, url)) if is_name(name) => (Some(name.to_string()), url.trim()),
            _ => (None, spec),
        };
        if url.is_empty() {
            bail!(
                "`{spec}` names a gateway but gives no URL; write NAME=URL, like gw-a=http://10.0.0.5:8080"
            );
        }
        Ok(MemberSpec {
            name,
            url: url.to_string(),
            token: None,
        })
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What the readers, the control and the console share about one member.
struct Shared {
    name: String,
    gateway: Gateway,
    /// Its event stream is up.
    up: AtomicBool,
    /// Its `/healthz` says it has simulated providers.
    simulated: AtomicBool,
}

/// A console's connection to a fleet: every member checked once, their readers and the merger
/// running.
pub struct FleetAttachment {
    /// The members' names, in the order given.
    pub names: Vec<String>,
    /// Why each member that did not answer at first did not (by index), shown until it does.
    pub down: Vec<(usize, String)>,
    pub events: broadcast::Receiver<Arc<Event>>,
    pub notes: mpsc::UnboundedReceiver<Note>,
    pub control: FleetControl,
    pub reader: Reader,
}

/// Check every member at once (`/healthz`), then follow them all. An error only if none answers
/// (each one's reason listed), or a URL cannot be a gateway's; a member that does not answer is
/// shown down and tried again.
pub async fn attach_fleet(specs: Vec<MemberSpec>, options: Options) -> Result<FleetAttachment> {
    if specs.len() > MEMBERS_KEPT {
        bail!(
            "a fleet console follows at most {MEMBERS_KEPT} gateways; {} were given",
            specs.len()
        );
    }
    let mut members: Vec<Arc<Shared>> = Vec::with_capacity(specs.len());
    for spec in specs {
        let gateway = Gateway::new(&spec.url, spec.token.clone(), &options)?;
        let mut name = spec.name.unwrap_or_else(|| gateway.target().to_string());
        // Names say where an event came from: two the same would say nothing.
        let base = name.clone();
        let mut n = 2;
        while members.iter().any(|m| m.name == name) {
            name = format!("{base}#{n}");
            n += 1;
        }
        members.push(Arc::new(Shared {
            name,
            gateway,
            up: AtomicBool::new(false),
            simulated: AtomicBool::new(false),
        }));
    }
    if members.is_empty() {
        bail!(
            "no gateway to attach to: give one or more URLs, or list them in the config's [fleet] gateways"
        );
    }
    let checks = futures::future::join_all(members.iter().map(|m| {
        let options = options.clone();
        async move {
            let limit = options.request_timeout;
            match tokio::time::timeout(limit, health(&m.gateway, &options)).await {
                Ok(Ok(health)) => Ok(health),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "{}: no answer from GET /healthz within {}",
                    m.gateway.url(),
                    human(limit)
                )),
            }
        }
    }))
    .await;
    let mut down = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        match check {
            Ok(Health { simulated, .. }) => {
                members[i].simulated.store(*simulated, Ordering::Relaxed)
            }
            Err(why) => down.push((i, why.clone())),
        }
    }
    if down.len() == members.len() {
        let reasons: Vec<String> = down
            .iter()
            .map(|(i, why)| format!("{}: {why}", members[*i].name))
            .collect();
        bail!("no gateway of the fleet answered: {}", reasons.join("; "));
    }

    let (tx, events) = broadcast::channel(EVENT_CAPACITY);
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let (merge_tx, merge_rx) = mpsc::channel(MEMBER_QUEUE);
    let mut tasks = vec![tokio::spawn(merge(merge_rx, tx, options.merge_window))];
    for (index, member) in members.iter().enumerate() {
        tasks.push(tokio::spawn(follow(
            index,
            Arc::clone(member),
            merge_tx.clone(),
            notes_tx.clone(),
            options.clone(),
        )));
    }
    let control = FleetControl {
        members: members.clone(),
        notes: notes_tx,
        timeout: options.request_timeout,
    };
    Ok(FleetAttachment {
        names: members.iter().map(|m| m.name.clone()).collect(),
        down,
        events,
        notes,
        control,
        reader: Reader(tasks),
    })
}

impl FleetAttachment {
    /// The console over the fleet: its dashboard holds a view per member, its header counts
    /// them, its commands go to all of them. Keep the [`Reader`] alive while it runs.
    pub fn into_app(
        self,
        ui: Ui,
        keys: Bindings,
    ) -> (App, broadcast::Receiver<Arc<Event>>, Reader) {
        let mut app = App::attached(ui, keys, self.control, self.notes);
        app.live = Dashboard::over_gateways(self.names);
        for (index, why) in self.down {
            app.on_note(Note::Member {
                index,
                link: MemberLink::Down {
                    why,
                    retry_in_ms: 0,
                },
            });
        }
        (app, self.events, self.reader)
    }
}

/// Where a member's stream stands across reconnections: the session it belongs to and the last
/// `seq` passed on, so that what a reconnection sends again is skipped.
#[derive(Default)]
struct Seen {
    session: Option<(DateTime<Utc>, u64)>,
    last: u64,
}

impl Seen {
    /// Whether to pass on the event of this connection with `seq` (a new session starts over).
    fn pass(&mut self, event: &Event) -> bool {
        if let EventKind::SessionStarted { .. } = event.kind {
            let session = Some((event.ts, event.seq));
            if session != self.session {
                self.session = session;
                self.last = 0;
            }
        }
        if event.seq <= self.last {
            return false;
        }
        self.last = event.seq;
        true
    }
}

/// Follow one member for as long as the console listens: connect, read, and when the stream
/// drops or never comes, say so and try again with backoff.
async fn follow(
    index: usize,
    member: Arc<Shared>,
    merge: mpsc::Sender<Event>,
    notes: mpsc::UnboundedSender<Note>,
    options: Options,
) {
    let mut delay = options.backoff_initial;
    let mut seen = Seen::default();
    // Whether the console has been told this member is down (transitions are flashed once).
    let mut told_down = false;
    loop {
        let why = match connect(&member, &options).await {
            Ok(response) => {
                member.up.store(true, Ordering::Relaxed);
                let link = Note::Member {
                    index,
                    link: MemberLink::Up,
                };
                if notes.send(link).is_err() {
                    return;
                }
                if told_down {
                    let back = format!("{} is back", member.name);
                    if notes.send(Note::Flash(back)).is_err() {
                        return;
                    }
                    told_down = false;
                }
                let ended = pump(&member, response, &mut seen, &merge, &notes, &options).await;
                member.up.store(false, Ordering::Relaxed);
                match ended {
                    None => return,
                    Some((why, delivered)) => {
                        if delivered {
                            delay = options.backoff_initial;
                        }
                        why
                    }
                }
            }
            Err(why) => why,
        };
        let link = Note::Member {
            index,
            link: MemberLink::Down {
                why: why.clone(),
                retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            },
        };
        if notes.send(link).is_err() {
            return;
        }
        if !told_down {
            let flash = format!(
                "{} is down, retrying in {} ({why})",
                member.name,
                human(delay)
            );
            if notes.send(Note::Flash(flash)).is_err() {
                return;
            }
            told_down = true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(options.backoff_max);
    }
}

/// `/healthz` (whether it has simulated providers now) and `/events`, each within the request
/// time limit: a member that accepts and never answers is down, not waited for.
async fn connect(
    member: &Shared,
    options: &Options,
) -> std::result::Result<reqwest::Response, String> {
    let limit = options.request_timeout;
    let health = tokio::time::timeout(limit, health(&member.gateway, options))
        .await
        .map_err(|_| format!("no answer within {}", human(limit)))?
        .map_err(|e| e.to_string())?;
    member.simulated.store(health.simulated, Ordering::Relaxed);
    tokio::time::timeout(limit, open_events(&member.gateway))
        .await
        .map_err(|_| format!("GET /events: no answer within {}", human(limit)))?
}

/// Pass one connection's events to the merger until it ends: why it ended and whether it
/// carried anything new, or `None` when the console is gone.
async fn pump(
    member: &Shared,
    response: reqwest::Response,
    seen: &mut Seen,
    merge: &mpsc::Sender<Event>,
    notes: &mpsc::UnboundedSender<Note>,
    options: &Options,
) -> Option<(String, bool)> {
    let mut body = response.bytes_stream();
    let mut decoder = Decoder::new(MAX_EVENT_BYTES);
    let mut ready: VecDeque<SseItem> = VecDeque::new();
    let mut delivered = false;
    loop {
        let why = match tokio::time::timeout(options.idle_timeout, body.next()).await {
            Err(_) => Some(format!("nothing heard for {}", human(options.idle_timeout))),
            Ok(None) => {
                decoder.finish(&mut ready);
                Some("the gateway closed the stream".to_string())
            }
            Ok(Some(Err(e))) => Some(member.gateway.scrub(&super::describe(&e))),
            Ok(Some(Ok(chunk))) => {
                decoder.feed(&chunk, &mut ready);
                None
            }
        };
        while let Some(item) = ready.pop_front() {
            match member_frame(item, &member.name) {
                MemberFrame::Event(event) => {
                    if seen.pass(&event) {
                        merge.send(event).await.ok()?;
                        delivered = true;
                    }
                }
                MemberFrame::Missed(n) => notes.send(Note::Missed(n)).ok()?,
            }
        }
        if let Some(why) = why {
            return Some((why, delivered));
        }
    }
}

#[derive(Debug, PartialEq)]
enum MemberFrame {
    /// Stamped with the member's name, its request id prefixed with it.
    Event(Event),
    Missed(u64),
}

/// One SSE frame of a member's `/events`, as the fleet's console folds it.
fn member_frame(item: SseItem, name: &str) -> MemberFrame {
    let SseEvent { event, data } = match item {
        Ok(frame) => frame,
        Err(e) => {
            tracing::debug!("attach: {name}: an event frame could not be decoded: {e}");
            return MemberFrame::Missed(1);
        }
    };
    if event.as_deref() == Some("lagged") {
        return match serde_json::from_str::<super::Lagged>(&data) {
            Ok(lagged) => MemberFrame::Missed(lagged.missed),
            Err(_) => MemberFrame::Missed(1),
        };
    }
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&data) else {
        tracing::debug!("attach: {name}: skipped an event that is not JSON");
        return MemberFrame::Missed(1);
    };
    if let Some(object) = json.as_object_mut() {
        if let Some(serde_json::Value::String(id)) = object.get_mut("request_id") {
            *id = format!("{name}/{id}");
        }
        object.insert("gateway".into(), name.into());
    }
    match serde_json::from_value::<Event>(json) {
        Ok(event) => MemberFrame::Event(event),
        Err(e) => {
            tracing::debug!("attach: {name}: skipped an event not understood ({event:?}): {e}");
            MemberFrame::Missed(1)
        }
    }
}

/// An event the merger holds, ordered by its time, then by arrival.
struct Held {
    ts: DateTime<Utc>,
    arrival: u64,
    arrived: Instant,
    event: Event,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.arrival) == (other.ts, other.arrival)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ts, self.arrival).cmp(&(other.ts, other.arrival))
    }
}

/// Merge the members' events into the console's channel in time order: each is held for
/// `window`, and the oldest held goes first. Numbered with the fleet's own `seq` as they go.
async fn merge(mut rx: mpsc::Receiver<Event>, tx: broadcast::Sender<Arc<Event>>, window: Duration) {
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut arrivals = 0u64;
    let mut seq = 0u64;
    let mut open = true;
    while open || !held.is_empty() {
        let due = held.peek().map(|Reverse(h)| h.arrived + window);
        tokio::select! {
            received = rx.recv(), if open => match received {
                Some(event) => {
                    arrivals += 1;
                    let now = Instant::now();
                    held.push(Reverse(Held { ts: event.ts, arrival: arrivals, arrived: now, event }));
                    // The rest of a burst, before anything goes.
                    while let Ok(event) = rx.try_recv() {
                        arrivals += 1;
                        held.push(Reverse(Held { ts: event.ts, arrival: arrivals, arrived: now, event }));
                    }
                }
                None => open = false,
            },
            () = sleep_until(due) => {}
        }
        let now = Instant::now();
        while let Some(Reverse(oldest)) = held.peek() {
            if open && oldest.arrived + window > now && held.len() <= HELD_MOST {
                break;
            }
            let Some(Reverse(Held { mut event, .. })) = held.pop() else {
                break;
            };
            seq += 1;
            event.seq = seq;
            if tx.send(Arc::new(event)).is_err() {
                return;
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Sends the operator's commands to every member of the fleet at once; the status bar says at
/// once where they went, then how many took them and why the others did not.
#[derive(Clone)]
pub struct FleetControl {
    members: Vec<Arc<Shared>>,
    notes: mpsc::UnboundedSender<Note>,
    timeout: Duration,
}

impl fmt::Debug for FleetControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        f.debug_struct("FleetControl")
            .field("members", &names)
            .finish_non_exhaustive()
    }
}

impl Control for FleetControl {
    fn send(&self, command: Command) -> String {
        let what = command.summary();
        let body = match serde_json::to_value(&command) {
            Ok(body) => body,
            Err(e) => return format!("{what}: {e}"),
        };
        let to: Vec<Arc<Shared>> = match &command {
            Command::Load { .. } => return "no background load on an attached console".to_string(),
            // One request, not one per gateway: the first connected takes it.
            Command::Prompt { .. } => {
                let first = self
                    .members
                    .iter()
                    .find(|m| m.up.load(Ordering::Relaxed))
                    .or(self.members.first());
                first.into_iter().cloned().collect()
            }
            Command::SetFault { .. } => {
                let simulated: Vec<Arc<Shared>> = self
                    .members
                    .iter()
                    .filter(|m| m.simulated.load(Ordering::Relaxed))
                    .cloned()
                    .collect();
                if simulated.is_empty() {
                    return "faults apply to simulated providers; no gateway of the fleet has them"
                        .to_string();
                }
                simulated
            }
            _ => self.members.clone(),
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return format!("{what}: cannot send from here (no runtime)");
        };
        let sent = match to.as_slice() {
            [one] => format!("{what} → sent to {}", one.name),
            all => format!("{what} → sent to {} gateways", all.len()),
        };
        let notes = self.notes.clone();
        let timeout = self.timeout;
        runtime.spawn(async move {
            let results =
                futures::future::join_all(to.iter().map(|m| exchange(&m.gateway, timeout, &body)))
                    .await;
            let outcome = fleet_outcome(&what, &to, results);
            let _ = notes.send(Note::Flash(outcome));
        });
        sent
    }

    fn attached(&self) -> bool {
        true
    }

    fn faults(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.simulated.load(Ordering::Relaxed))
    }
}

/// `trip anthropic: 3/3 gateways took it`, or which did not and why.
fn fleet_outcome(
    what: &str,
    to: &[Arc<Shared>],
    results: Vec<std::result::Result<Option<String>, String>>,
) -> String {
    if let ([member], [result]) = (to, results.as_slice()) {
        return match result {
            Ok(Some(message)) => format!("{}: {message}", member.name),
            Ok(None) => format!("{what}: done on {}", member.name),
            Err(why) => format!("{what} failed on {}: {why}", member.name),
        };
    }
    let took = results.iter().filter(|r| r.is_ok()).count();
    let mut line = format!("{what}: {took}/{} gateways took it", results.len());
    for (member, result) in to.iter().zip(&results) {
        if let Err(why) = result {
            line.push_str(&format!("; {} failed: {why}", member.name));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_a_url_or_a_name_and_a_url() {
        let spec = MemberSpec::parse("gw-a=http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (spec.name.as_deref(), spec.url.as_str()),
            (Some("gw-a"), "http://127.0.0.1:8080")
        );
        let spec = MemberSpec::parse("http://h:1/?a=b").unwrap();
        assert_eq!((spec.name, spec.url.as_str()), (None, "http://h:1/?a=b"));
        let spec = MemberSpec::parse("127.0.0.1:9000").unwrap();
        assert_eq!(spec.name, None);
        let err = MemberSpec::parse("gw-a=").unwrap_err().to_string();
        assert!(err.contains("NAME=URL"), "{err}");
        let shown = format!(
            "{:?}",
            MemberSpec {
                token: Some("hunter2".into()),
                ..spec
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    fn event(json: &str) -> SseItem {
        Ok(SseEvent {
            event: None,
            data: json.to_string(),
        })
    }

    #[test]
    fn a_member_frame_is_stamped_and_its_request_named() {
        let frame = member_frame(
            event(
                r#"{"ts":"2026-03-14T12:00:00.000Z","seq":7,"type":"request_started","request_id":"r1","source":"gateway","chain":["a"]}"#,
            ),
            "gw-b",
        );
        let MemberFrame::Event(e) = frame else {
            panic!("{frame:?}");
        };
        assert_eq!((e.seq, e.gateway.as_deref()), (7, Some("gw-b")));
        let EventKind::RequestStarted { request_id, .. } = &e.kind else {
            panic!("{e:?}");
        };
        assert_eq!(request_id, "gw-b/r1");
        assert_eq!(
            member_frame(event("{not json"), "x"),
            MemberFrame::Missed(1)
        );
    }

    #[test]
    fn a_reconnection_to_the_same_session_passes_only_what_is_new() {
        let at = |seq: u64, kind: EventKind, ts: &str| {
            let ts = DateTime::parse_from_rfc3339(ts)
                .unwrap()
                .with_timezone(&Utc);
            Event::new(ts, seq, kind)
        };
        let session = |ts: &str| {
            at(
                1,
                EventKind::SessionStarted {
                    format_version: 1,
                    mode: crate::event::Mode::Serve,
                    providers: vec![],
                    breaker_threshold: None,
                    breaker_counts: None,
                    settings: None,
                    pools: vec![],
                },
                ts,
            )
        };
        let action = |seq: u64| {
            at(
                seq,
                EventKind::OperatorAction {
                    action: crate::event::OperatorAction::Trip,
                    provider: Some("a".into()),
                    detail: String::new(),
                    instance: None,
                },
                "2026-03-14T12:00:01Z",
            )
        };
        let mut seen = Seen::default();
        let first = [session("2026-03-14T12:00:00Z"), action(2), action(3)];
        assert!(first.iter().all(|e| seen.pass(e)));
        // The same session again, its history, then one new event.
        let again = [
            session("2026-03-14T12:00:00Z"),
            action(2),
            action(3),
            action(4),
        ];
        let passed: Vec<bool> = again.iter().map(|e| seen.pass(e)).collect();
        assert_eq!(passed, [false, false, false, true]);
        // The gateway started again: a new session, passed in full.
        let restarted = [session("2026-03-14T13:00:00Z"), action(2)];
        assert!(restarted.iter().all(|e| seen.pass(e)));
    }
}
