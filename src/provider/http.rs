//! Shared HTTP transport for the protocol clients: POST a JSON body, turn the reply into normalized
//! events through a protocol's [`SseParser`], and classify every way that can fail, with the per-attempt
//! time limits of [`Timeouts`].
//!
//! Time limits use `tokio::time`, so they are deterministic under a paused test clock.

use super::sse::{SseEvent, SseStream, SseStreamError};
use super::{
    ApiKey, ErrorClass, Phase, ProviderConfig, ProviderError, ProviderStream, RateLimits,
    StreamEvent, Timeouts,
};
use crate::secret::{Secrets, url_for_display};
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{HeaderMap, HeaderValue, InvalidHeaderValue};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{Instant, timeout_at};

/// Error bodies are read up to this size; the rest is not worth waiting for.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Provider messages are cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 1000;
/// A provider's error type, code and request id are cut to this many: they are names, not prose.
const MAX_FIELD_CHARS: usize = 200;

/// The reqwest client every protocol client shares.
// `ProviderError` is large, but this signature is the one `provider::build` passes on.
#[allow(clippy::result_large_err)]
pub fn client(timeouts: &Timeouts) -> Result<reqwest::Client, ProviderError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        // A provider API never legitimately redirects a POST, and following one would send the
        // body and the key to wherever the `Location` points.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProviderError::new("http", ErrorClass::Connect, Phase::Connect, e.to_string()))
}

/// `path` under `base`, before any query the base URL carries (`https://h/v1?api-version=1` →
/// `https://h/v1/chat/completions?api-version=1`).
pub fn endpoint(base: &str, path: &str) -> String {
    let (base, query) = match base.find(['?', '#']) {
        Some(i) => base.split_at(i),
        None => (base, ""),
    };
    format!("{}{path}{query}", base.trim_end_matches('/'))
}

/// A header value holding a secret, hidden from `Debug` output. The error does not echo the value.
pub fn secret_header(value: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut header = HeaderValue::from_str(value)?;
    header.set_sensitive(true);
    Ok(header)
}

/// The reply of a client whose key cannot be sent.
pub fn unusable_key(provider: &str) -> ProviderStream {
    let err = ProviderError::new(
        provider,
        ErrorClass::Auth,
        Phase::Connect,
        "the API key contains characters not allowed in an HTTP header",
    );
    futures::stream::iter([Err(err)]).boxed()
}

/// What a protocol parser reports when a stream fails; the transport adds the provider, phase and status.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub class: ErrorClass,
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
}

impl Failure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            error_type: None,
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    /// A payload that is not what the protocol promises.
    pub fn malformed(what: &str, err: impl std::fmt::Display) -> Self {
        Failure::new(ErrorClass::Malformed, format!("{what}: {err}"))
    }

    /// An error payload (a non-2xx body or an in-stream error event), parsed leniently: Anthropic's
    /// `{"type":"error","error":{"type","message"},"request_id"}`, OpenAI's
    /// `{"error":{"message","type","param","code"}}`, flat `{"object":"error","message",…}`,
    /// `{"error":"text"}`, or plain text.
    pub fn from_error_body(status: Option<u16>, body: &str) -> Self {
        let json: Option<Value> = serde_json::from_str(body).ok();
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let (mut error_type, mut code, mut message, mut request_id) = (None, None, None, None);
        if let Some(json) = &json {
            request_id = json.get("request_id").and_then(text);
            let fields = match json.get("error") {
                Some(Value::String(s)) => {
                    message = Some(s.clone());
                    None
                }
                Some(obj @ Value::Object(_)) => Some(obj),
                _ => Some(json),
            };
            if let Some(fields) = fields {
                // Gemini names its type `status`; the flat form's `type` is beside the message.
                error_type = fields
                    .get("type")
                    .and_then(text)
                    .or_else(|| fields.get("status").and_then(text))
                    // AWS's JSON protocols (`{"__type": "…#ValidationException", "message"}`).
                    .or_else(|| fields.get("__type").and_then(text));
                code = fields.get("code").and_then(text);
                // `detail` is FastAPI's (some self-hosted servers).
                message = fields
                    .get("message")
                    .or_else(|| fields.get("Message"))
                    .or_else(|| fields.get("detail"))
                    .and_then(text);
            }
        }
        let message = match message.filter(|m| !m.trim().is_empty()) {
            Some(m) => m,
            // Plain text, or JSON of a shape we do not know: the body itself says most.
            None if !body.trim().is_empty() => body.trim().to_string(),
            None => status.map_or_else(
                || "error without a message".to_string(),
                |s| format!("HTTP {s}"),
            ),
        };
        let class =
            ErrorClass::from_provider(status, error_type.as_deref(), code.as_deref(), &message);
        Failure {
            class,
            error_type,
            code,
            message,
            request_id,
        }
    }
}

/// Whether a protocol's stream goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    More,
    /// The protocol's terminal event arrived: the reply is complete.
    Finished,
}

/// How a protocol frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events.
    Sse,
    /// AWS's binary event stream (`application/vnd.amazon.eventstream`, Bedrock's), each message
    /// read as an event named by its `:event-type` (see [`super::bedrock::frames`]).
    EventStream,
}

/// A wire protocol's event grammar: SSE events in, normalized events out.
pub trait SseParser: Send + 'static {
    /// How the stream is framed; SSE unless the protocol says otherwise.
    fn framing(&self) -> Framing {
        Framing::Sse
    }
    /// Handle one SSE event, pushing the normalized events it means onto `out`. On `Err` the stream
    /// fails and whatever was pushed is dropped.
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<Flow, Failure>;
    /// The body ended cleanly without the terminal event. `Ok` (after pushing `Done`) if the protocol
    /// accepts that as complete, else the failure (usually `stream_cut`).
    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), Failure>;
}

/// Stream `request`'s reply from `path` below the provider's base URL, as `protocol` speaks it:
/// with the key the request should use ([`super::Request::key_for`]) in the headers `headers`
/// makes; for a request that came in `protocol` (a passthrough) with the caller's protocol
/// headers, and each upstream event passed on as it arrived too — but for a continuation, whose
/// events the engine splices on normalized.
#[allow(clippy::too_many_arguments)]
pub fn send<P: SseParser>(
    http: &reqwest::Client,
    config: &ProviderConfig,
    protocol: super::Protocol,
    request: &super::Request,
    headers: impl FnOnce(&ApiKey) -> Result<HeaderMap, InvalidHeaderValue>,
    path: &str,
    body: String,
    parser: P,
) -> ProviderStream {
    let key = request.key_for(protocol, &config.api_key).clone();
    let Ok(mut headers) = headers(&key) else {
        return unusable_key(&config.name);
    };
    let original = request
        .original
        .as_deref()
        .filter(|o| o.protocol == protocol);
    if let Some(original) = original {
        forward_headers(original, &mut headers);
    }
    let url = endpoint(&config.base_url, path);
    let wire = original.is_some() && request.prefill.is_none();
    post_sse(http, config, &key, &url, headers, body, parser, wire)
}

/// The caller's own protocol headers (versions, betas) over the client's defaults, for a passthrough.
fn forward_headers(original: &super::Original, headers: &mut HeaderMap) {
    // The caller's values replace the client's own (a repeated header stays repeated).
    for (name, _) in &original.headers {
        headers.remove(name.as_str());
    }
    for (name, value) in &original.headers {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
}

/// POST `body` (JSON) with `headers` to `url` and stream the reply through `parser`; with `wire`,
/// each SSE event also goes out as it arrived ([`StreamEvent::Wire`], ahead of what it means).
///
/// The request is sent when the returned stream is first polled; dropping the stream aborts it.
/// Errors of any phase arrive as the stream's last item.
#[allow(clippy::too_many_arguments)]
fn post_sse<P: SseParser>(
    http: &reqwest::Client,
    config: &ProviderConfig,
    key: &ApiKey,
    url: &str,
    headers: HeaderMap,
    body: String,
    parser: P,
    wire: bool,
) -> ProviderStream {
    let request = http
        .post(url)
        .headers(headers)
        .body(body)
        .build()
        .map_err(|e| describe(&e));
    // The key this attempt sends is a secret even when the setup did not list it (a caller's own
    // key on a passthrough route, a client built by hand).
    let secrets = if key.is_empty() || config.secrets.holds(key.expose()) {
        config.secrets.clone()
    } else {
        config.secrets.with([key.expose()])
    };
    let attempt = Attempt {
        provider: config.name.clone(),
        secrets,
        timeouts: config.timeouts,
        max_event_bytes: config.max_event_bytes,
        http: http.clone(),
        parser,
        wire,
        stage: Stage::Start(Box::new(request)),
        ready: VecDeque::new(),
        limits: None,
        failed: None,
        yielded: false,
        started: Instant::now(),
    };
    futures::stream::unfold(attempt, |mut attempt| async move {
        let item = attempt.next().await?;
        Some((item, attempt))
    })
    .boxed()
}

type Body = BoxStream<'static, Result<SseEvent, SseStreamError<reqwest::Error>>>;

enum Stage {
    // Boxed: the request is far larger than a running body, and is taken once.
    Start(Box<Result<reqwest::Request, String>>),
    Streaming(Body),
    Ended,
}

/// Which time limit a wait runs against.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Total,
    Headers,
    FirstEvent,
    Idle,
}

/// One attempt's state, driven by the stream's consumer.
struct Attempt<P> {
    provider: String,
    /// Removed from everything the provider sends back, before it is cut or passed on.
    secrets: Secrets,
    timeouts: Timeouts,
    max_event_bytes: usize,
    http: reqwest::Client,
    parser: P,
    /// Pass each SSE event on as it arrived, too (a passthrough).
    wire: bool,
    stage: Stage,
    ready: VecDeque<StreamEvent>,
    /// The response's rate-limit headers, yielded before anything else it means.
    limits: Option<RateLimits>,
    /// The failure that ends the stream, held while `limits` goes out first.
    failed: Option<ProviderError>,
    /// Whether a normalized event has been yielded: the line between `first_event` and `mid_stream`.
    yielded: bool,
    started: Instant,
}

impl<P: SseParser> Attempt<P> {
    async fn next(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            if let Some(limits) = self.limits.take() {
                return Some(Ok(StreamEvent::RateLimits(limits)));
            }
            if let Some(err) = self.failed.take() {
                return Some(Err(err));
            }
            if let Some(mut event) = self.ready.pop_front() {
                self.yielded = true;
                redact_event(&self.secrets, &mut event);
                return Some(Ok(event));
            }
            let result = match std::mem::replace(&mut self.stage, Stage::Ended) {
                Stage::Ended => return None,
                Stage::Start(request) => self.open(*request).await,
                Stage::Streaming(body) => self.read(body).await,
            };
            if let Err(err) = result {
                self.ready.clear();
                self.failed = Some(err);
            }
        }
    }

    /// Send the request and wait for a 2xx status; then the body streams.
    async fn open(
        &mut self,
        request: Result<reqwest::Request, String>,
    ) -> Result<(), ProviderError> {
        self.started = Instant::now();
        let request = request
            .map_err(|m| self.error(Failure::new(ErrorClass::Connect, m), Phase::Connect))?;
        let t = self.timeouts;
        let (limit, deadline) = earliest([
            (Limit::Total, after(self.started, t.total)),
            (Limit::Headers, after(self.started, t.headers)),
            (Limit::FirstEvent, after(self.started, t.first_event)),
        ]);
        let response = match timeout_at(deadline, self.http.execute(request)).await {
            Err(_) => return Err(self.timed_out(limit, Phase::Headers)),
            Ok(Err(e)) => {
                // Refused or timed-out connects are `is_connect`; a reset or close before the status
                // line is not, but means the same to a caller: this server did not answer.
                let phase = if e.is_connect() {
                    Phase::Connect
                } else {
                    Phase::Headers
                };
                return Err(self.error(Failure::new(ErrorClass::Connect, describe(&e)), phase));
            }
            Ok(Ok(response)) => response,
        };
        self.limits = RateLimits::from_headers(response.headers(), chrono::Utc::now());
        if response.status().is_redirection() {
            return Err(self.redirected(&response));
        }
        if !response.status().is_success() {
            return Err(self.error_response(response).await);
        }
        let body = response.bytes_stream().boxed();
        self.stage = Stage::Streaming(match self.parser.framing() {
            Framing::Sse => SseStream::new(body, self.max_event_bytes).boxed(),
            Framing::EventStream => super::bedrock::frames(body, self.max_event_bytes),
        });
        Ok(())
    }

    /// Read SSE events until the parser has produced something to yield, or the body ends.
    async fn read(&mut self, mut body: Body) -> Result<(), ProviderError> {
        while self.ready.is_empty() {
            let phase = if self.yielded {
                Phase::MidStream
            } else {
                Phase::FirstEvent
            };
            let t = self.timeouts;
            let first_event =
                (!self.yielded).then(|| (Limit::FirstEvent, after(self.started, t.first_event)));
            // Idle counts from now, not from the last event: time the consumer spent is not silence.
            // Keepalive comments are not events, so they do not hold off a stall: a proxy keeps
            // sending them while the model behind it has hung.
            let (limit, deadline) = earliest(
                [
                    Some((Limit::Total, after(self.started, t.total))),
                    first_event,
                    Some((Limit::Idle, after(Instant::now(), t.idle))),
                ]
                .into_iter()
                .flatten(),
            );
            let flow = match timeout_at(deadline, body.next()).await {
                Err(_) => return Err(self.timed_out(limit, phase)),
                Ok(None) => self.parser.end(&mut self.ready).map(|()| Flow::Finished),
                Ok(Some(Ok(event))) => {
                    if self.wire {
                        self.ready.push_back(StreamEvent::Wire {
                            event: event.event.clone(),
                            data: event.data.clone(),
                        });
                    }
                    self.parser.event(event, &mut self.ready)
                }
                Ok(Some(Err(SseStreamError::Decode(e)))) => {
                    Err(Failure::malformed("bad SSE event", e))
                }
                Ok(Some(Err(SseStreamError::Body(e)))) => Err(Failure::new(
                    ErrorClass::StreamCut,
                    format!("stream broke: {}", describe(&e)),
                )),
            };
            match flow {
                Err(failure) => return Err(self.error(failure, phase)),
                Ok(Flow::Finished) => return Ok(()),
                Ok(Flow::More) => {}
            }
        }
        self.stage = Stage::Streaming(body);
        Ok(())
    }

    /// A non-2xx response: read its body (bounded in size and time) and classify it.
    async fn error_response(&mut self, mut response: reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let deadline =
            after(Instant::now(), self.timeouts.idle).min(after(self.started, self.timeouts.total));
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match timeout_at(deadline, response.chunk()).await {
                Ok(Ok(Some(chunk))) => {
                    let room = MAX_ERROR_BODY - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // Classify from what arrived; the status alone is enough to go on.
                _ => break,
            }
        }
        let body = String::from_utf8_lossy(&body);
        let mut failure = Failure::from_error_body(Some(status), &body);
        if status == 429 && crate::protocol::gemini::daily_quota(&body) {
            failure.class = ErrorClass::Quota;
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        // Whichever of the protocols' headers the provider sent.
        let request_id = header(crate::protocol::anthropic::REQUEST_ID_HEADER)
            .or_else(|| header(crate::protocol::chat::REQUEST_ID_HEADER))
            .or_else(|| header(crate::protocol::bedrock::REQUEST_ID_HEADER));
        // AWS names the error in a header (Bedrock's `x-amzn-ErrorType`), its body only says why.
        if let Some(name) = header(crate::protocol::bedrock::ERROR_TYPE_HEADER) {
            let name = crate::protocol::bedrock::error_type_name(name).to_string();
            failure.class =
                ErrorClass::from_provider(Some(status), Some(&name), None, &failure.message);
            failure.error_type = Some(name);
        }
        if let Some(id) = request_id {
            failure.request_id = Some(id.to_string());
        }
        let mut err = self.error(failure, Phase::Headers);
        err.status = Some(status);
        // Google says when to come back in the body (a `RetryInfo` detail), not in a header.
        err.retry_after =
            retry_after(&headers).or_else(|| crate::protocol::gemini::retry_info(&body));
        err
    }

    /// A 3xx: named with the host it points to (never its path or query, where keys hide), and
    /// not followed.
    fn redirected(&self, response: &reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let target = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| response.url().join(location).ok());
        let to = match target.as_ref().and_then(|url| url.host_str()) {
            Some(host) => match target.as_ref().and_then(reqwest::Url::port) {
                Some(port) => format!(" to {host}:{port}"),
                None => format!(" to {host}"),
            },
            None => String::new(),
        };
        let message = format!(
            "HTTP {status} redirect{to} not followed: provider calls never follow redirects; \
             check the provider's base_url"
        );
        let mut err = self.error(Failure::new(ErrorClass::Redirect, message), Phase::Headers);
        err.status = Some(status);
        err
    }

    fn timed_out(&self, limit: Limit, phase: Phase) -> ProviderError {
        let t = &self.timeouts;
        let (class, message) = match limit {
            Limit::Total => (
                ErrorClass::Timeout,
                format!("no complete reply within the total limit of {:?}", t.total),
            ),
            Limit::Headers => (
                ErrorClass::Timeout,
                format!("no response headers within {:?}", t.headers),
            ),
            Limit::FirstEvent => (
                ErrorClass::Timeout,
                format!("no first event within {:?}", t.first_event),
            ),
            Limit::Idle => (ErrorClass::Stalled, format!("no event for {:?}", t.idle)),
        };
        self.error(Failure::new(class, message), phase)
    }

    /// Everything a server says may echo what it was sent: every field is redacted, and before
    /// it is cut, so that a cut cannot leave part of a key behind.
    fn error(&self, failure: Failure, phase: Phase) -> ProviderError {
        let clean =
            |text: String| truncate(self.secrets.redact(&text).into_owned(), MAX_FIELD_CHARS);
        let message = truncate(
            self.secrets.redact(&failure.message).into_owned(),
            MAX_MESSAGE_CHARS,
        );
        ProviderError {
            class: failure.class,
            error_type: failure.error_type.map(clean),
            code: failure.code.map(clean),
            request_id: failure.request_id.map(clean),
            ..ProviderError::new(self.provider.clone(), failure.class, phase, message)
        }
    }
}

/// `start + limit`, saturating: a limit past what the clock can represent is as good as none.
/// (The config allows a day at most; this keeps any other caller from a panic.)
fn after(start: Instant, limit: Duration) -> Instant {
    // tokio's own horizon for a sleep that never ends.
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
    start
        .checked_add(limit)
        .or_else(|| start.checked_add(FAR))
        .unwrap_or(start)
}

/// The earliest of several deadlines; ties go to the earlier entry, so list the more telling limit first.
fn earliest(limits: impl IntoIterator<Item = (Limit, Instant)>) -> (Limit, Instant) {
    limits
        .into_iter()
        .min_by_key(|&(_, at)| at)
        .unwrap_or((Limit::Total, Instant::now()))
}

/// Every string a provider sent in `event`, redacted.
fn redact_event(secrets: &Secrets, event: &mut StreamEvent) {
    match event {
        StreamEvent::MessageStart { id, model } => {
            secrets.scrub(id);
            secrets.scrub(model);
        }
        StreamEvent::TextDelta { text }
        | StreamEvent::ThinkingDelta { text }
        | StreamEvent::RefusalDelta { text } => secrets.scrub(text),
        StreamEvent::ToolCallStart { id, name, .. } => {
            secrets.scrub(id);
            secrets.scrub(name);
        }
        StreamEvent::ToolCallDelta { partial_json, .. } => secrets.scrub(partial_json),
        StreamEvent::Done {
            raw_stop_reason, ..
        } => secrets.scrub_opt(raw_stop_reason),
        StreamEvent::Wire { event, data } => {
            secrets.scrub_opt(event);
            secrets.scrub(data);
        }
        StreamEvent::ContinuedBy { model } => secrets.scrub(model),
        StreamEvent::Usage(_)
        | StreamEvent::Rewind { .. }
        | StreamEvent::Spliced
        | StreamEvent::RateLimits(_) => {}
    }
}

/// A reqwest error with its causes: the top line alone ("error sending request") says too little.
/// Its URL is shown without user info or query, where credentials hide.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), &url_for_display(url.as_str()));
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `retry-after-ms` or `x-ms-retry-after-ms` (milliseconds), else `retry-after` (seconds, possibly fractional, or an HTTP
/// date), at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // Azure's `x-ms-retry-after-ms` means the same as OpenAI's `retry-after-ms`.
    let ms = crate::protocol::azure::RETRY_AFTER_MS_HEADERS
        .iter()
        .find_map(|name| header(name).and_then(|v| v.parse::<f64>().ok()));
    if let Some(ms) = ms
        && let Some(d) = seconds(ms / 1000.0)
    {
        return Some(d);
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return seconds(secs);
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    // A date in the past means "now".
    let wait = (date.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The longest retry-after taken from a provider; a longer one (a larger number than a duration
/// holds included) is read as this. A breaker opens for a day at most, and no wait computed from
/// a retry-after can overflow the clock.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A number of seconds as a retry-after: `None` when negative or not a number.
fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| {
        Duration::try_from_secs_f64(secs).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7"), ("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(
            retry_after(&headers(&[(
                "retry-after",
                "Wed, 21 Oct 2015 07:28:00 GMT"
            )])),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let got = retry_after(&headers(&[("retry-after", &later)])).unwrap();
        assert!(
            got > Duration::from_secs(27) && got <= Duration::from_secs(30),
            "{got:?}"
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn a_huge_retry_after_is_read_as_a_day() {
        for (name, value) in [
            ("retry-after", "9300000000000000000"),
            ("retry-after", "1e300"),
            ("retry-after-ms", "1e300"),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ] {
            assert_eq!(
                retry_after(&headers(&[(name, value)])),
                Some(MAX_RETRY_AFTER),
                "{name}: {value}"
            );
        }
        assert_eq!(retry_after(&headers(&[("retry-after", "inf")])), None);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_saturate_instead_of_overflowing() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let far = after(now, Duration::MAX);
        assert!(
            far > now + Duration::from_secs(365 * 24 * 60 * 60),
            "{far:?}"
        );
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let f = Failure::from_error_body(
            Some(529),
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
        );
        assert_eq!(
            (
                f.class,
                f.error_type.as_deref(),
                f.message.as_str(),
                f.request_id.as_deref()
            ),
            (
                ErrorClass::Overloaded,
                Some("overloaded_error"),
                "Overloaded",
                Some("req_1")
            )
        );
        let f = Failure::from_error_body(
            Some(429),
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(
            (f.class, f.code.as_deref()),
            (ErrorClass::Quota, Some("insufficient_quota"))
        );
        let f = Failure::from_error_body(
            Some(400),
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens","type":"BadRequestError","param":null,"code":400}"#,
        );
        assert_eq!(
            (f.class, f.code.as_deref()),
            (ErrorClass::ContextLength, Some("400"))
        );
        let f = Failure::from_error_body(Some(500), r#"{"error":"boom"}"#);
        assert_eq!(
            (f.class, f.message.as_str()),
            (ErrorClass::ServerError, "boom")
        );
        let f = Failure::from_error_body(Some(502), "  <html>Bad Gateway</html>\n");
        assert_eq!(
            (f.class, f.message.as_str()),
            (ErrorClass::ServerError, "<html>Bad Gateway</html>")
        );
        let f = Failure::from_error_body(Some(404), r#"{"detail":"Not Found"}"#);
        assert_eq!(
            (f.class, f.message.as_str()),
            (ErrorClass::NotFound, "Not Found")
        );
        let f = Failure::from_error_body(Some(500), "[1,2]");
        assert_eq!(f.message, "[1,2]");
        let f = Failure::from_error_body(Some(503), "");
        assert_eq!(
            (f.class, f.message.as_str()),
            (ErrorClass::Overloaded, "HTTP 503")
        );
        let f = Failure::from_error_body(
            Some(429),
            r#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(
            (f.class, f.error_type.as_deref()),
            (ErrorClass::RateLimited, Some("RESOURCE_EXHAUSTED"))
        );
        let f = Failure::from_error_body(
            None,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(f.class, ErrorClass::Overloaded);
    }

    #[test]
    fn endpoints_go_before_the_query() {
        assert_eq!(
            endpoint("https://h/v1/", "/chat/completions"),
            "https://h/v1/chat/completions"
        );
        assert_eq!(
            endpoint(
                "https://h/openai/v1?api-version=2024-10-21",
                "/chat/completions"
            ),
            "https://h/openai/v1/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(endpoint("http://h", "/v1/messages"), "http://h/v1/messages");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("ééé".into(), 2), "éé…");
        assert_eq!(truncate("abc".into(), 3), "abc");
    }
}
