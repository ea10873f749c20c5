//! `breakerbox attach URL`: the console on a gateway running elsewhere. Its events come from the
//! gateway's `GET /events` (server-sent events, one [`Event`] per frame, forwarded with the
//! gateway's own `seq` and `ts`); the operator's commands go to its `POST /control`; `GET /healthz`
//! says whether it has simulated providers (so whether the fault picker can work).
//!
//! A reader task feeds a broadcast channel that [`App::run`] folds like a local bus. When the
//! stream drops, the header says DISCONNECTED, the status bar when the next try is, and the reader
//! reconnects with backoff (to [`Options::backoff_max`]). Each connection starts with the gateway's
//! `session_started`, then its snapshot and recent events, so an attached [`App`] starts a fresh
//! `Dashboard` at every `session_started`: after a reconnect the console shows what a freshly
//! attached one would, never the same events counted twice (and history older than what the
//! gateway re-sends is not recounted).
//!
//! The token travels only in the `Authorization` header (marked sensitive); it is never shown,
//! logged or printed, and text from the gateway is scrubbed of it before it is shown.

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::console::app::{App, Control, Note};
use crate::console::keys::Bindings;
use crate::console::ui::{Attached, Link, Ui};
use crate::event::Event;
use crate::provider::sse::{Decoder, SseEvent, SseItem};
use crate::session::Command;

mod fleet;
pub use fleet::{FleetAttachment, FleetControl, MemberSpec, attach_fleet};

/// Events held for the console between folds; past it the console is told it lagged.
pub const EVENT_CAPACITY: usize = 1 << 16;
/// One event's most bytes (a long prompt or reply chunk fits; a runaway frame does not).
const MAX_EVENT_BYTES: usize = 4 << 20;
/// The most of an error body read from the gateway.
const MAX_ERROR_BODY: usize = 16 * 1024;
/// Messages from the gateway are cut to this many characters.
const MESSAGE_CHARS: usize = 200;

/// Time limits and backoff of an attachment.
#[derive(Debug, Clone)]
pub struct Options {
    /// To open a connection.
    pub connect_timeout: Duration,
    /// Silence on `/events` (not even a keepalive, sent every 15 s) after which it is reopened.
    pub idle_timeout: Duration,
    /// A whole `/control` or `/healthz` exchange.
    pub request_timeout: Duration,
    /// The first wait before reconnecting; it doubles on each failed try, up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A fleet's events are held this long before they are shown, to be put in time order across
    /// its members (see `fleet.rs`).
    pub merge_window: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(45),
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            merge_window: Duration::from_millis(250),
        }
    }
}

/// The gateway's shared secret: never in `Debug`, never in a message.
#[derive(Clone)]
struct Token(Arc<str>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where the gateway is and how to present ourselves to it.
#[derive(Clone)]
pub struct Gateway {
    /// The base URL as requests use it, without a trailing `/`, query or fragment.
    base: String,
    /// The base URL as messages show it: no credentials.
    shown: String,
    /// `host:port`, for the header.
    target: String,
    token: Option<Token>,
    header: Option<HeaderValue>,
    http: reqwest::Client,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("url", &self.shown)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// `url` is the gateway's base URL (`http://` is assumed when no scheme is given).
    pub fn new(url: &str, token: Option<String>, options: &Options) -> Result<Self> {
        let trimmed = url.trim();
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("http://{trimmed}")
        };
        let mut parsed = reqwest::Url::parse(&with_scheme).map_err(|e| {
            eyre!("`{trimmed}` is not a gateway URL ({e}); give one like http://127.0.0.1:8080")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            bail!(
                "`{trimmed}` is not a gateway URL: the scheme must be http or https, like http://127.0.0.1:8080"
            );
        }
        let Some(host) = parsed.host_str().map(str::to_string) else {
            bail!("`{trimmed}` is not a gateway URL: it has no host");
        };
        parsed.set_query(None);
        parsed.set_fragment(None);
        let base = parsed.as_str().trim_end_matches('/').to_string();
        let mut shown_url = parsed.clone();
        // Credentials in the URL are never shown (they may be a secret of a proxy in front).
        let _ = shown_url.set_username("");
        let _ = shown_url.set_password(None);
        let shown = shown_url.as_str().trim_end_matches('/').to_string();
        let target = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let header = match &token {
            Some(token) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                        eyre!("the token has characters an HTTP header cannot carry; check it")
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .build()
            .wrap_err("cannot set up the HTTP client")?;
        Ok(Gateway {
            base,
            shown,
            target,
            token: token.map(|t| Token(t.into())),
            header,
            http,
        })
    }

    /// `host:port`, as the header shows it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The base URL, as messages show it (without credentials).
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.header {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    /// Text from the gateway or the network, made fit for one line of the screen: the token
    /// taken out, should it ever be echoed.
    fn scrub(&self, text: &str) -> String {
        let mut text = one_line(text);
        if let Some(Token(token)) = &self.token {
            text = text.replace(&**token, "<token>");
        }
        truncate(text, MESSAGE_CHARS)
    }

    /// Why a 401 was given, with what to do about it.
    fn refused(&self, error: &str) -> String {
        let error = if error.is_empty() {
            String::new()
        } else {
            format!(": {error}")
        };
        if self.token.is_some() {
            format!(
                "the gateway refused the token (401{error}); check --token-file or BREAKERBOX_TOKEN"
            )
        } else {
            format!(
                "the gateway needs a token (401{error}); give --token-file FILE or BREAKERBOX_TOKEN"
            )
        }
    }
}

/// What `GET /healthz` says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Health {
    pub status: String,
    /// `demo` or `live`.
    #[serde(default)]
    pub mode: String,
    /// The gateway has simulated providers, so `set_fault` can work.
    #[serde(default)]
    pub simulated: bool,
}

/// Ask the gateway how it is; a clear error if it is not there or not a gateway.
pub async fn health(gateway: &Gateway, options: &Options) -> Result<Health> {
    let url = gateway.url();
    let request = gateway
        .authorized(gateway.http.get(gateway.endpoint("/healthz")))
        .timeout(options.request_timeout);
    let response = request.send().await.map_err(|e| {
        eyre!(
            "cannot reach the gateway at {url}: {} (is `breakerbox serve` running there?)",
            gateway.scrub(&describe(&e))
        )
    })?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        let error = error_text(gateway, response).await;
        bail!("{url}: {}", gateway.refused(&error));
    }
    if !status.is_success() {
        bail!("{url} does not look like a breakerbox gateway: GET /healthz answered {status}");
    }
    let body = read_limited(response, MAX_ERROR_BODY).await;
    serde_json::from_slice::<Health>(&body).map_err(|_| {
        eyre!(
            "{url} does not look like a breakerbox gateway: GET /healthz did not answer with its status JSON"
        )
    })
}

/// Open `GET /events`: the response, once it is a 200 event stream, or a one-line reason.
async fn open_events(gateway: &Gateway) -> std::result::Result<reqwest::Response, String> {
    let request = gateway
        .authorized(gateway.http.get(gateway.endpoint("/events")))
        .header(ACCEPT, "text/event-stream");
    let response = request
        .send()
        .await
        .map_err(|e| gateway.scrub(&describe(&e)))?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        let error = error_text(gateway, response).await;
        return Err(gateway.refused(&error));
    }
    if !status.is_success() {
        let error = error_text(gateway, response).await;
        let error = if error.is_empty() {
            String::new()
        } else {
            format!(": {error}")
        };
        return Err(format!("GET /events answered {status}{error}"));
    }
    let event_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if !event_stream {
        return Err(
            "GET /events did not answer with an event stream; is this a breakerbox gateway?"
                .to_string(),
        );
    }
    Ok(response)
}

/// Stops the reader tasks (one per gateway, and a fleet's merger) when dropped.
#[derive(Debug)]
pub struct Reader(Vec<JoinHandle<()>>);

impl Drop for Reader {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A console's connection to a gateway: checked, its event stream open and being read.
pub struct Attachment {
    pub gateway: Gateway,
    pub health: Health,
    /// The gateway's events, for [`App::run`].
    pub events: broadcast::Receiver<Arc<Event>>,
    /// Command results, lost events and the stream's state, for [`App::attached`].
    pub notes: mpsc::UnboundedReceiver<Note>,
    pub control: RemoteControl,
    /// Reads `/events` (and reconnects) until dropped.
    pub reader: Reader,
}

/// Check the gateway (`/healthz`), open its `/events` and start reading it. Errors here are the
/// clear one-line kind: unreachable, not a gateway, token refused.
pub async fn attach(url: &str, token: Option<String>, options: Options) -> Result<Attachment> {
    let gateway = Gateway::new(url, token, &options)?;
    let health = health(&gateway, &options).await?;
    let first = open_events(&gateway)
        .await
        .map_err(|why| eyre!("{}: {why}", gateway.url()))?;
    let (tx, events) = broadcast::channel(EVENT_CAPACITY);
    let (notes_tx, notes) = mpsc::unbounded_channel();
    let reader = Reader(vec![tokio::spawn(read_events(
        gateway.clone(),
        first,
        tx,
        notes_tx.clone(),
        options.clone(),
    ))]);
    let control = RemoteControl {
        gateway: gateway.clone(),
        notes: notes_tx,
        timeout: options.request_timeout,
        simulated: health.simulated,
    };
    Ok(Attachment {
        gateway,
        health,
        events,
        notes,
        control,
        reader,
    })
}

impl Attachment {
    /// The console for this attachment: `ui` with the gateway in the header, the fault picker
    /// only if it has simulated providers, no background load. Keep the [`Reader`] alive while the
    /// console runs.
    pub fn into_app(
        self,
        ui: Ui,
        keys: Bindings,
    ) -> (App, broadcast::Receiver<Arc<Event>>, Reader) {
        let ui = Ui {
            attached: Some(Attached {
                target: self.gateway.target().to_string(),
                link: Link::Connected,
            }),
            ..ui
        };
        let app = App::attached(ui, keys, self.control, self.notes);
        (app, self.events, self.reader)
    }
}

/// How one connection's stream ended.
enum Pumped {
    /// The console is gone: stop.
    Closed,
    /// The stream ended or failed; `delivered` says whether it carried any event.
    Ended { why: String, delivered: bool },
}

/// Read the gateway's events into `tx` for as long as the console listens, reconnecting with
/// backoff whenever the stream drops.
async fn read_events(
    gateway: Gateway,
    first: reqwest::Response,
    tx: broadcast::Sender<Arc<Event>>,
    notes: mpsc::UnboundedSender<Note>,
    options: Options,
) {
    let mut response = first;
    let mut delay = options.backoff_initial;
    loop {
        let mut why = match pump(&gateway, response, &tx, &notes, options.idle_timeout).await {
            Pumped::Closed => return,
            Pumped::Ended { why, delivered } => {
                // A stream that worked earns a quick retry; one dropped at once backs off further.
                if delivered {
                    delay = options.backoff_initial;
                }
                why
            }
        };
        let mut tries = 0;
        response = loop {
            // The words that matter first: a narrow status bar cuts the end.
            let flash = if tries == 0 {
                format!(
                    "disconnected from {}, reconnecting in {} ({why})",
                    gateway.target(),
                    human(delay)
                )
            } else {
                format!(
                    "still disconnected from {}, retrying in {} ({why})",
                    gateway.target(),
                    human(delay)
                )
            };
            let link = Note::Link(Link::Disconnected {
                retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            });
            if notes.send(link).is_err() || notes.send(Note::Flash(flash)).is_err() {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(options.backoff_max);
            tries += 1;
            match open_events(&gateway).await {
                Ok(response) => break response,
                Err(e) => why = e,
            }
        };
        let flash = format!("reconnected to {}", gateway.target());
        if notes.send(Note::Link(Link::Connected)).is_err()
            || notes.send(Note::Flash(flash)).is_err()
        {
            return;
        }
    }
}

/// Forward one connection's events until it ends.
async fn pump(
    gateway: &Gateway,
    response: reqwest::Response,
    tx: &broadcast::Sender<Arc<Event>>,
    notes: &mpsc::UnboundedSender<Note>,
    idle: Duration,
) -> Pumped {
    let mut body = response.bytes_stream();
    // Fed bytes directly (not through `SseStream`) so that keepalive comments, which are not
    // events, still count as signs of life against `idle`.
    let mut decoder = Decoder::new(MAX_EVENT_BYTES);
    let mut ready: VecDeque<SseItem> = VecDeque::new();
    let mut delivered = false;
    loop {
        let why = match tokio::time::timeout(idle, body.next()).await {
            Err(_) => Some(format!("nothing heard for {}", human(idle))),
            Ok(None) => {
                decoder.finish(&mut ready);
                Some("the gateway closed the stream".to_string())
            }
            Ok(Some(Err(e))) => Some(gateway.scrub(&describe(&e))),
            Ok(Some(Ok(chunk))) => {
                decoder.feed(&chunk, &mut ready);
                None
            }
        };
        while let Some(item) = ready.pop_front() {
            match forward(item, tx, notes) {
                Forwarded::Event => delivered = true,
                Forwarded::Other => {}
                Forwarded::Gone => return Pumped::Closed,
            }
        }
        if let Some(why) = why {
            return Pumped::Ended { why, delivered };
        }
    }
}

enum Forwarded {
    Event,
    Other,
    /// Nobody listens any more.
    Gone,
}

#[derive(Deserialize)]
struct Lagged {
    missed: u64,
}

/// Pass one SSE frame on: an event to the console's channel as the gateway stamped it, a `lagged`
/// frame as lost events. A frame that is not an event this console knows (a newer gateway's) is
/// counted as missed rather than shown wrong.
fn forward(
    item: SseItem,
    tx: &broadcast::Sender<Arc<Event>>,
    notes: &mpsc::UnboundedSender<Note>,
) -> Forwarded {
    let note = match parse_frame(item) {
        Frame::Event(event) => {
            return match tx.send(Arc::new(event)) {
                Ok(_) => Forwarded::Event,
                Err(_) => Forwarded::Gone,
            };
        }
        Frame::Missed(n) => Note::Missed(n),
    };
    match notes.send(note) {
        Ok(()) => Forwarded::Other,
        Err(_) => Forwarded::Gone,
    }
}

/// What one SSE frame from `/events` means to the console.
#[derive(Debug, PartialEq)]
enum Frame {
    Event(Event),
    /// Events lost: the gateway's count, or 1 for a frame that could not be read.
    Missed(u64),
}

fn parse_frame(item: SseItem) -> Frame {
    let SseEvent { event, data } = match item {
        Ok(frame) => frame,
        Err(e) => {
            tracing::debug!("attach: an event frame could not be decoded: {e}");
            return Frame::Missed(1);
        }
    };
    if event.as_deref() == Some("lagged") {
        return match serde_json::from_str::<Lagged>(&data) {
            Ok(lagged) => Frame::Missed(lagged.missed),
            Err(e) => {
                tracing::debug!("attach: a lagged frame could not be read: {e}");
                Frame::Missed(1)
            }
        };
    }
    match serde_json::from_str::<Event>(&data) {
        Ok(event) => Frame::Event(event),
        Err(e) => {
            tracing::debug!("attach: skipped an event not understood ({event:?}): {e}");
            Frame::Missed(1)
        }
    }
}

/// Sends the operator's commands to the gateway's `/control`. Never blocks the console: each
/// command is a task of its own, and its result comes back as a [`Note::Flash`].
#[derive(Clone)]
pub struct RemoteControl {
    gateway: Gateway,
    notes: mpsc::UnboundedSender<Note>,
    timeout: Duration,
    /// The gateway's providers are simulated (its `/healthz` says), so faults can be set.
    simulated: bool,
}

impl fmt::Debug for RemoteControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteControl")
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

/// `/control`'s answer, either way.
#[derive(Debug, Default, Deserialize)]
struct ControlReply {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl Control for RemoteControl {
    /// Send the command to the gateway's `/control`: a line for the status bar at once, and the
    /// gateway's answer later as a note.
    fn send(&self, command: Command) -> String {
        if let Command::Load { .. } = command {
            return "no background load on an attached console".to_string();
        }
        let what = command.summary();
        match serde_json::to_value(&command) {
            Ok(body) => self.post(what, body),
            Err(e) => format!("{what}: {e}"),
        }
    }

    fn attached(&self) -> bool {
        true
    }

    fn faults(&self) -> bool {
        self.simulated
    }
}

impl RemoteControl {
    fn post(&self, what: String, body: serde_json::Value) -> String {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return format!("{what}: cannot send from here (no runtime)");
        };
        let this = self.clone();
        let sent = format!("{what} → sent");
        runtime.spawn(async move {
            let outcome = this.outcome(&what, &body).await;
            let _ = this.notes.send(Note::Flash(outcome));
        });
        sent
    }

    /// POST the command and say how it went, in one line.
    async fn outcome(&self, what: &str, body: &serde_json::Value) -> String {
        match exchange(&self.gateway, self.timeout, body).await {
            Ok(Some(message)) => message,
            Ok(None) => format!("{what}: done"),
            Err(why) => format!("{what} failed: {why}"),
        }
    }
}

/// POST a command to a gateway's `/control`: its message when it took it (if it said one), or
/// why not, in a few words (scrubbed of the token).
async fn exchange(
    gateway: &Gateway,
    timeout: Duration,
    body: &serde_json::Value,
) -> std::result::Result<Option<String>, String> {
    let request = gateway
        .authorized(gateway.http.post(gateway.endpoint("/control")))
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    let response = request.send().await.map_err(|e| {
        format!(
            "cannot reach {}: {}",
            gateway.target(),
            gateway.scrub(&describe(&e))
        )
    })?;
    let status = response.status();
    let bytes = read_limited(response, MAX_ERROR_BODY).await;
    let reply: ControlReply = serde_json::from_slice(&bytes).unwrap_or_default();
    let said = |text: Option<String>| text.map(|t| gateway.scrub(&t)).filter(|t| !t.is_empty());
    if status.is_success() {
        Ok(said(reply.message))
    } else if status == StatusCode::UNAUTHORIZED {
        let error = said(reply.error).unwrap_or_default();
        Err(gateway.refused(&error))
    } else {
        Err(said(reply.error).unwrap_or_else(|| status.to_string()))
    }
}

/// Up to `limit` bytes of a response body; whatever arrived if it fails part way.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - out.len();
                out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    out
}

/// An error response's `error` (the gateway's JSON), else its text; scrubbed, one line.
async fn error_text(gateway: &Gateway, response: reqwest::Response) -> String {
    let bytes = read_limited(response, MAX_ERROR_BODY).await;
    let text = match serde_json::from_slice::<ControlReply>(&bytes) {
        Ok(ControlReply { error: Some(e), .. }) => e,
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    gateway.scrub(&text)
}

/// A network error in a few words: the innermost cause (`Connection refused (os error 111)`),
/// without reqwest's framing or the URL.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_string();
    }
    let mut innermost = None;
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    innermost.unwrap_or_else(|| {
        // No cause: reqwest's own text, without the URL.
        let text = err.to_string();
        match err.url() {
            Some(url) => text.replace(&format!(" ({url})"), ""),
            None => text,
        }
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `250ms`, `2s`, `1.5s`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::sse::SseError;

    fn gateway(url: &str, token: Option<&str>) -> Gateway {
        Gateway::new(url, token.map(str::to_string), &Options::default()).expect("a gateway")
    }

    #[test]
    fn urls_are_normalized_and_shown_without_credentials() {
        let g = gateway("http://127.0.0.1:8080/", None);
        assert_eq!(g.endpoint("/events"), "http://127.0.0.1:8080/events");
        assert_eq!(g.target(), "127.0.0.1:8080");
        let g = gateway("localhost:9000", None);
        assert_eq!(g.endpoint("/healthz"), "http://localhost:9000/healthz");
        assert_eq!(g.target(), "localhost:9000");
        let g = gateway("https://user:pw@gw.example.com/bb/?x=1#f", None);
        assert_eq!(
            g.endpoint("/control"),
            "https://user:pw@gw.example.com/bb/control"
        );
        assert_eq!(g.url(), "https://gw.example.com/bb");
        assert_eq!(g.target(), "gw.example.com");
        let err = Gateway::new("ftp://x", None, &Options::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("http or https"), "{err}");
        assert!(Gateway::new("http://", None, &Options::default()).is_err());
    }

    #[test]
    fn the_token_is_never_in_debug_or_in_messages() {
        let g = gateway("http://127.0.0.1:1", Some("hunter2-secret"));
        let shown = format!("{g:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        assert_eq!(
            g.scrub("bad token hunter2-secret\nsecond line"),
            "bad token <token> second line"
        );
        let refused = g.refused("invalid token");
        assert!(refused.contains("refused the token"), "{refused}");
        let anonymous = gateway("http://127.0.0.1:1", None);
        assert!(anonymous.refused("").contains("needs a token"));
        assert!(
            Gateway::new("http://h", Some("bad\ntoken".into()), &Options::default())
                .unwrap_err()
                .to_string()
                .contains("header")
        );
        let control = RemoteControl {
            gateway: g,
            notes: mpsc::unbounded_channel().0,
            timeout: Duration::from_secs(1),
            simulated: false,
        };
        assert!(!format!("{control:?}").contains("hunter2"));
    }

    fn frame(event: Option<&str>, data: &str) -> SseItem {
        Ok(SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
        })
    }

    #[test]
    fn frames_are_events_as_stamped_or_lost_events() {
        let data = r#"{"ts":"2026-03-14T12:00:00.000Z","seq":42,"type":"breaker_changed","provider":"anthropic","from":"closed","to":"open","reason":"5 consecutive failures"}"#;
        match parse_frame(frame(Some("breaker_changed"), data)) {
            Frame::Event(e) => {
                assert_eq!(e.seq, 42, "the gateway's seq is kept");
                assert_eq!(e.kind.type_name(), "breaker_changed");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_frame(frame(Some("lagged"), r#"{"missed": 17}"#)),
            Frame::Missed(17)
        );
        assert_eq!(
            parse_frame(frame(
                Some("brand_new"),
                r#"{"ts":"2026-03-14T12:00:00.000Z","seq":1,"type":"brand_new"}"#
            )),
            Frame::Missed(1)
        );
        assert_eq!(
            parse_frame(Err(SseError::TooLarge { limit: 1 })),
            Frame::Missed(1)
        );
    }

    #[tokio::test]
    async fn a_command_to_a_gateway_that_is_gone_says_so() {
        let gone = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr")
        };
        let (notes, mut rx) = mpsc::unbounded_channel();
        let control = RemoteControl {
            gateway: gateway(&format!("http://{gone}"), Some("hunter2-secret")),
            notes,
            timeout: Duration::from_secs(5),
            simulated: false,
        };
        assert_eq!(
            control.send(Command::Trip {
                provider: "anthropic".into()
            }),
            "trip anthropic → sent"
        );
        let Some(Note::Flash(flash)) = rx.recv().await else {
            panic!("no result");
        };
        assert!(
            flash.starts_with(&format!("trip anthropic failed: cannot reach {gone}: ")),
            "{flash}"
        );
        assert!(!flash.contains("hunter2"));
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(2)), "2s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(truncate("ééé".into(), 2), "éé…");
    }
}
