//! A recording as OpenTelemetry spans in the OTLP/JSON encoding (what an OTLP/HTTP collector, Jaeger,
//! Grafana Tempo or Langfuse accept): one span per request, one child span per attempt, with the
//! GenAI semantic-convention attributes (`gen_ai.*`) and breakerbox's own (`breakerbox.*`).
//!
//! Ids are derived from the session's start time and the request id with a fixed hash, so exporting
//! the same file twice gives the same trace and span ids (and a re-import deduplicates).
//!
//! [`Spans`] is the fold itself: the file export (`replay FILE --export otlp-json`) runs it over a
//! recording, the live exporter (`serve --otlp-endpoint`, `crate::telemetry`) over the bus, and
//! both hand on each request's spans as soon as its `request_finished` arrives.
//!
//! Attributes follow the GenAI semantic conventions as they stand (the `gen_ai.provider.name`
//! era: no `gen_ai.system`): `gen_ai.usage.input_tokens` counts every input token, cached ones
//! included, as the convention wants (breakerbox's events count them apart, as Anthropic does).

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::SessionHeader;
use crate::event::facts::TokenCounts;
use crate::event::{Event, EventKind, Fold, Outcome, Protocol, ProviderInfo, SkipReason, Source};

const SCOPE: &str = "breakerbox";
/// OTLP `SpanKind`: the request is breakerbox's own work, an attempt is a call to a provider.
const KIND_INTERNAL: u8 = 1;
const KIND_CLIENT: u8 = 3;
const STATUS_OK: u8 = 1;
const STATUS_ERROR: u8 = 2;

struct Req {
    /// Order of `request_started`, so unfinished requests come out in a stable order.
    order: u64,
    id: String,
    source: String,
    chain: Vec<String>,
    /// The chain the request named (`x-breakerbox-chain`), when it did.
    chain_name: Option<String>,
    max_tokens: Option<u32>,
    /// Whether the caller asked for a streamed reply, when known.
    stream: Option<bool>,
    start: DateTime<Utc>,
    attempts: Vec<Attempt>,
    /// `attempt_skipped` and `rewind`, as span events.
    skips: Vec<Value>,
    dropped_skips: u64,
}

struct Attempt {
    number: u32,
    provider: String,
    /// The pool the provider was chosen from.
    pool: Option<String>,
    model: String,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    response_model: Option<String>,
    response_id: Option<String>,
    tokens: TokenCounts,
    cost_usd: f64,
    /// A usage of it had no price: `cost_usd` is not its cost (`breakerbox.cost_unknown`).
    unpriced: bool,
    first_event_ms: Option<u64>,
    failure: Option<Failure>,
    events: Vec<Value>,
    dropped_events: u64,
}

struct Failure {
    class: &'static str,
    phase: &'static str,
    retryable: bool,
    message: String,
    status: Option<u16>,
}

/// Requests held open at once; past it the oldest is exported as unfinished, so a recording of
/// requests that never finish cannot take unbounded memory.
const MAX_OPEN: usize = 10_000;
/// Span events (`attempt_skipped`, `rewind`) kept per span; the rest are counted as dropped.
const MAX_SPAN_EVENTS: usize = 128;
/// Attempts kept per request (the engine allows at most `retry.max_attempts`, 10,000 at most).
const MAX_ATTEMPTS: usize = 10_000;

/// Export a recording's events as OTLP/JSON (`{"resourceSpans": [...]}`). Unreadable lines are the
/// caller's to report: pass only the events (e.g. `reader.filter_map(Result::ok)` after logging the
/// errors). Requests still open at the end become spans that end at the last event, status unset.
pub fn to_otlp_json(header: &SessionHeader, events: impl IntoIterator<Item = Event>) -> Value {
    let mut spans = Vec::new();
    export(header, events, |span| spans.push(span));
    envelope(header, spans)
}

/// [`to_otlp_json`], written to `out` as each request ends: memory holds the requests in flight,
/// not the file. The bytes are those of `to_otlp_json(…).to_string()`.
pub fn write_otlp_json(
    header: &SessionHeader,
    events: impl IntoIterator<Item = Event>,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    // The envelope around an empty span list, split where the spans go.
    let shell = envelope(header, Vec::new()).to_string();
    let at = shell
        .rfind("\"spans\":[]")
        .map_or(shell.len(), |i| i + "\"spans\":[".len());
    let (open, close) = shell.split_at(at);
    out.write_all(open.as_bytes())?;
    let mut first = true;
    let mut result = Ok(());
    export(header, events, |span| {
        if result.is_err() {
            return;
        }
        let comma: &[u8] = if first { b"" } else { b"," };
        first = false;
        result = out
            .write_all(comma)
            .and_then(|()| serde_json::to_writer(&mut *out, &span).map_err(std::io::Error::from));
    });
    result?;
    out.write_all(close.as_bytes())
}

fn envelope(header: &SessionHeader, spans: Vec<Value>) -> Value {
    envelope_of(&header.breakerbox_version, spans)
}

/// The OTLP/JSON request around `spans` (an `ExportTraceServiceRequest`), from breakerbox
/// `version`.
pub fn envelope_of(version: &str, spans: Vec<Value>) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [
                    kv_str("service.name", "breakerbox"),
                    kv_str("service.version", version),
                ],
            },
            "scopeSpans": [{
                // No scope version: it would change every export (and golden) with each release.
                "scope": {"name": SCOPE},
                "spans": spans,
            }],
        }],
    })
}

/// Fold the events into spans, handing each to `sink` as soon as its request ends.
fn export(
    header: &SessionHeader,
    events: impl IntoIterator<Item = Event>,
    mut sink: impl FnMut(Value),
) {
    let mut exporter = Spans::for_header(header);
    for event in events {
        // The spans the previous event ended go out once the next one is read.
        exporter.spans.drain(..).for_each(&mut sink);
        exporter.apply(&event);
    }
    exporter.finish(header.started_at);
    exporter.spans.drain(..).for_each(&mut sink);
}

/// What the spans say of a provider: its GenAI provider name and where it is reached.
#[derive(Debug, Clone, Default, PartialEq)]
struct ProviderMeta {
    /// `gen_ai.provider.name`: the convention's well-known value for its protocol (and host).
    genai: &'static str,
    /// `server.address` and `server.port`, from its base URL.
    server: Option<(String, u16)>,
}

impl ProviderMeta {
    fn of(info: &ProviderInfo) -> ProviderMeta {
        let url = info
            .base_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok());
        let host = url.as_ref().and_then(|u| u.host_str()).unwrap_or("");
        let server = url.as_ref().and_then(|u| {
            let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
            Some((host.to_string(), u.port_or_known_default()?))
        });
        ProviderMeta {
            genai: genai_provider(info.protocol, host),
            server,
        }
    }
}

/// The GenAI convention's `gen_ai.provider.name` for a provider of `protocol` at `host`: its
/// well-known values, told apart by host where one protocol serves several (Chat Completions
/// servers, Gemini on AI Studio or Vertex AI).
pub fn genai_provider(protocol: Protocol, host: &str) -> &'static str {
    let on = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    match protocol {
        Protocol::Anthropic => "anthropic",
        Protocol::Openai if on("groq.com") => "groq",
        Protocol::Openai if on("deepseek.com") => "deepseek",
        Protocol::Openai if on("mistral.ai") => "mistral_ai",
        Protocol::Openai if on("x.ai") => "x_ai",
        Protocol::Openai if on("perplexity.ai") => "perplexity",
        Protocol::Openai | Protocol::OpenaiResponses => "openai",
        Protocol::Gemini if on("aiplatform.googleapis.com") => "gcp.vertex_ai",
        Protocol::Gemini => "gcp.gemini",
        Protocol::Bedrock => "aws.bedrock",
        Protocol::Azure => "azure.ai.openai",
    }
}

/// The span fold: requests in flight, and the spans of those that ended, not yet handed on
/// ([`Spans::take`]).
pub struct Spans {
    ids: SpanIds,
    /// Provider name → what its spans say of it, from the header and `session_started`.
    providers: HashMap<String, ProviderMeta>,
    open: HashMap<String, Req>,
    /// Request ids in the order they started, to find the oldest when too many are open.
    started: VecDeque<(u64, String)>,
    order: u64,
    last_ts: Option<DateTime<Utc>>,
    spans: Vec<Value>,
}

impl Spans {
    /// A fold whose ids derive from `session_key` (the same key and events give the same ids),
    /// knowing `providers` before their `session_started`.
    pub fn new(session_key: &str, providers: &[ProviderInfo]) -> Self {
        let mut spans = Spans {
            ids: SpanIds {
                session_key: session_key.to_string(),
            },
            providers: HashMap::new(),
            open: HashMap::new(),
            started: VecDeque::new(),
            order: 0,
            last_ts: None,
            spans: Vec::new(),
        };
        spans.know(providers);
        spans
    }

    /// The fold of a recording: ids from its start time, providers from its header.
    pub fn for_header(header: &SessionHeader) -> Self {
        let key = header.started_at.timestamp_micros().to_string();
        Spans::new(&key, &header.providers)
    }

    fn know(&mut self, providers: &[ProviderInfo]) {
        for info in providers {
            self.providers
                .insert(info.name.clone(), ProviderMeta::of(info));
        }
    }

    /// The spans of the requests that ended since the last call, requests first.
    pub fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.spans)
    }

    /// Requests started and not yet ended.
    pub fn open_requests(&self) -> usize {
        self.open.len()
    }

    /// Export the requests still open, in the order they started, as ending at the last event
    /// (at `start` if there was none).
    pub fn finish(&mut self, start: DateTime<Utc>) {
        let end = self.last_ts.unwrap_or(start);
        let open = std::mem::take(&mut self.open);
        let rest: BTreeMap<u64, Req> = open.into_values().map(|r| (r.order, r)).collect();
        for req in rest.into_values() {
            self.emit(req, end, None);
        }
    }

    fn on_request_started(&mut self, ts: DateTime<Utc>, started: &EventKind) {
        let EventKind::RequestStarted {
            request_id,
            source,
            chain,
            chain_name,
            max_tokens,
            stream,
            ..
        } = started
        else {
            return;
        };
        let source: Source = *source;
        self.order += 1;
        let order = self.order;
        let source = serde_json::to_value(source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        // A repeated id would collide with the earlier span: finish the earlier one first.
        if let Some(prev) = self.open.remove(request_id) {
            self.emit(prev, ts, None);
        }
        self.make_room(ts);
        self.started.push_back((order, request_id.to_string()));
        if self.started.len() > 2 * MAX_OPEN {
            // Ids of finished requests pile up at the front: drop them.
            let open = &self.open;
            self.started
                .retain(|(order, id)| open.get(id).is_some_and(|r| r.order == *order));
        }
        let req = Req {
            order,
            id: request_id.to_string(),
            source,
            chain: chain.to_vec(),
            chain_name: chain_name.clone(),
            max_tokens: *max_tokens,
            stream: *stream,
            start: ts,
            attempts: Vec::new(),
            skips: Vec::new(),
            dropped_skips: 0,
        };
        self.open.insert(request_id.to_string(), req);
    }

    /// Too many open: the oldest still open goes out unfinished.
    fn make_room(&mut self, ts: DateTime<Utc>) {
        while self.open.len() >= MAX_OPEN {
            let Some((order, id)) = self.started.pop_front() else {
                break;
            };
            if self.open.get(&id).is_some_and(|r| r.order == order)
                && let Some(oldest) = self.open.remove(&id)
            {
                self.emit(oldest, ts, None);
            }
        }
    }

    fn on_attempt_started(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        number: u32,
        provider: &str,
        model: &str,
        pool: &Option<String>,
    ) {
        if let Some(req) = self
            .open
            .get_mut(request_id)
            .filter(|r| r.attempts.len() < MAX_ATTEMPTS)
        {
            req.attempts.push(Attempt {
                number,
                provider: provider.to_string(),
                pool: pool.clone(),
                model: model.to_string(),
                start: ts,
                end: None,
                response_model: None,
                response_id: None,
                tokens: TokenCounts::default(),
                cost_usd: 0.0,
                unpriced: false,
                first_event_ms: None,
                failure: None,
                events: Vec::new(),
                dropped_events: 0,
            });
        }
    }

    fn on_attempt_skipped(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        provider: &str,
        reason: SkipReason,
    ) {
        if let Some(req) = self.open.get_mut(request_id) {
            let event = json!({
                "timeUnixNano": nanos(ts),
                "name": "attempt_skipped",
                "attributes": [
                    kv_str("breakerbox.provider", provider),
                    kv_str("breakerbox.reason", reason.as_str()),
                ],
            });
            push_event(&mut req.skips, &mut req.dropped_skips, event);
        }
    }

    fn on_rewind(
        &mut self,
        ts: DateTime<Utc>,
        request_id: &str,
        provider: &str,
        discarded_chars: u64,
        reason: &str,
    ) {
        if let Some(a) = self.attempt(request_id, provider, None) {
            let event = json!({
                "timeUnixNano": nanos(ts),
                "name": "rewind",
                "attributes": [
                    kv_int("breakerbox.discarded_chars", discarded_chars),
                    kv_str("breakerbox.reason", reason),
                ],
            });
            push_event(&mut a.events, &mut a.dropped_events, event);
        }
    }

    fn on_usage(
        &mut self,
        usage: &EventKind,
        request_id: &str,
        provider: &str,
        model: &str,
        (cost_usd, unpriced): (f64, bool),
    ) {
        let response_id = match usage {
            EventKind::Usage { response_id, .. } => response_id.clone(),
            _ => None,
        };
        if let Some(a) = self.attempt(request_id, provider, None) {
            a.response_model = Some(model.to_string());
            if response_id.is_some() {
                a.response_id = response_id;
            }
            a.tokens
                .accumulate(TokenCounts::from_usage(usage).unwrap_or_default());
            if cost_usd.is_finite() {
                a.cost_usd += cost_usd;
            }
            a.unpriced |= unpriced;
        }
    }

    fn on_request_finished(&mut self, ts: DateTime<Utc>, request_id: &str, finish: Finish) {
        if let Some(req) = self.open.remove(request_id) {
            self.emit(req, ts, Some(finish));
        }
    }

    /// The attempt an event belongs to: the latest with that provider (and number, when given).
    fn attempt(
        &mut self,
        request_id: &str,
        provider: &str,
        number: Option<u32>,
    ) -> Option<&mut Attempt> {
        let req = self.open.get_mut(request_id)?;
        let exact = req
            .attempts
            .iter()
            .rposition(|a| a.provider == provider && number.is_none_or(|n| n == a.number));
        let index = exact.or_else(|| req.attempts.iter().rposition(|a| a.provider == provider))?;
        req.attempts.get_mut(index)
    }

    /// A request's span, then one child span per attempt.
    fn emit(&mut self, req: Req, end: DateTime<Utc>, finish: Option<Finish>) {
        let end = end.max(req.start);
        let trace_id = self.ids.trace(&req.id);
        let span_id = self.ids.request(&req.id);
        let answered = finish
            .as_ref()
            .filter(|f| f.ok)
            .and_then(|f| f.provider.as_deref());
        // The last attempt on the answering provider is the one that answered.
        let winner = answered.and_then(|p| req.attempts.iter().rposition(|a| a.provider == p));
        // The request span names the provider that answered, else the last one tried, else
        // its primary.
        let named = winner
            .and_then(|i| req.attempts.get(i))
            .or(req.attempts.last())
            .map(|a| a.provider.as_str())
            .or(answered)
            .or(req.chain.first().map(String::as_str));
        let none = ProviderMeta::default();
        let meta = |name: Option<&str>| name.and_then(|n| self.providers.get(n)).unwrap_or(&none);
        let span = request_span(
            &req,
            RequestSpan {
                trace_id: &trace_id,
                span_id: &span_id,
                end,
                genai: meta(named).genai,
                answer: winner.and_then(|i| req.attempts.get(i)),
            },
            finish.as_ref(),
        );
        self.spans.push(span);
        let stop_reason = finish.as_ref().and_then(|f| f.stop_reason.clone());
        let max_tokens = req.max_tokens;
        let mut spans = Vec::with_capacity(req.attempts.len());
        for (i, a) in req.attempts.into_iter().enumerate() {
            let parent = ParentSpan {
                trace_id: &trace_id,
                span_id: &span_id,
                end,
                max_tokens,
            };
            let id = self.ids.attempt(&req.id, i);
            let provider = meta(Some(a.provider.as_str()));
            // Only the answering attempt has a finish reason: the others failed or were cut.
            let finished = (winner == Some(i)).then(|| stop_reason.as_deref().unwrap_or(""));
            spans.push(attempt_span(a, &id, parent, provider, finished));
        }
        self.spans.extend(spans);
    }
}

impl Fold for Spans {
    fn apply(&mut self, event: &Event) {
        let ts = event.ts;
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));
        match &event.kind {
            EventKind::SessionStarted { providers, .. } => self.know(providers),
            EventKind::RequestStarted { .. } => self.on_request_started(ts, &event.kind),
            EventKind::AttemptStarted {
                request_id,
                attempt,
                provider,
                model,
                pool,
            } => self.on_attempt_started(ts, request_id, *attempt, provider, model, pool),
            EventKind::AttemptFailed {
                request_id,
                attempt,
                provider,
                ..
            } => {
                if let Some(a) = self.attempt(request_id, provider, Some(*attempt)) {
                    a.end = Some(ts);
                    a.failure = Failure::of(&event.kind);
                }
            }
            EventKind::AttemptSkipped {
                request_id,
                provider,
                reason,
            } => self.on_attempt_skipped(ts, request_id, provider, *reason),
            EventKind::FirstEvent {
                request_id,
                attempt,
                provider,
                latency_ms,
            } => {
                if let Some(a) = self.attempt(request_id, provider, Some(*attempt)) {
                    a.first_event_ms = Some(*latency_ms);
                }
            }
            EventKind::Rewind {
                request_id,
                provider,
                discarded_chars,
                reason,
            } => self.on_rewind(ts, request_id, provider, *discarded_chars, reason),
            EventKind::Usage {
                request_id,
                provider,
                model,
                cost_usd,
                unpriced,
                ..
            } => {
                let cost = (*cost_usd, *unpriced);
                self.on_usage(&event.kind, request_id, provider, model, cost);
            }
            EventKind::RequestFinished { request_id, .. } => {
                if let Some(finish) = Finish::of(&event.kind) {
                    self.on_request_finished(ts, request_id, finish);
                }
            }
            EventKind::TextDelta { .. }
            | EventKind::BreakerChanged { .. }
            | EventKind::ProviderFlagged { .. }
            | EventKind::FaultChanged { .. }
            | EventKind::ProbeStarted { .. }
            | EventKind::ProbeFinished { .. }
            | EventKind::RateLimits { .. }
            | EventKind::ThrottleChanged { .. }
            | EventKind::ClusterChanged { .. }
            | EventKind::RequestRejected { .. }
            | EventKind::OperatorAction { .. } => {}
        }
    }
}

/// How a request ended, from its `request_finished`.
struct Finish {
    ok: bool,
    provider: Option<String>,
    stop_reason: Option<String>,
    class: Option<&'static str>,
    message: Option<String>,
    cost_usd: f64,
    failed_cost_usd: f64,
    unpriced: bool,
}

impl Finish {
    fn of(kind: &EventKind) -> Option<Finish> {
        let EventKind::RequestFinished {
            outcome,
            provider,
            stop_reason,
            class,
            message,
            cost_usd,
            failed_cost_usd,
            unpriced,
            ..
        } = kind
        else {
            return None;
        };
        Some(Finish {
            ok: *outcome == Outcome::Ok,
            provider: provider.clone(),
            stop_reason: stop_reason.clone(),
            class: class.map(|c| c.as_str()),
            message: message.clone(),
            cost_usd: *cost_usd,
            failed_cost_usd: *failed_cost_usd,
            unpriced: *unpriced,
        })
    }

    /// The request span's status: ok, or an error with the message (else the class).
    fn status(&self) -> Value {
        if self.ok {
            return json!({"code": STATUS_OK});
        }
        let message = self
            .message
            .clone()
            .or_else(|| self.class.map(str::to_string))
            .unwrap_or_else(|| "error".to_string());
        json!({"code": STATUS_ERROR, "message": message})
    }
}

impl Failure {
    fn of(kind: &EventKind) -> Option<Failure> {
        let EventKind::AttemptFailed {
            phase,
            class,
            retryable,
            status,
            message,
            ..
        } = kind
        else {
            return None;
        };
        Some(Failure {
            class: class.as_str(),
            phase: phase.as_str(),
            retryable: *retryable,
            message: message.clone(),
            status: *status,
        })
    }
}

/// Trace and span ids: a fixed hash of the session's start and the request id (and the attempt's
/// index), so the same file always exports the same ids.
struct SpanIds {
    session_key: String,
}

impl SpanIds {
    fn trace(&self, request_id: &str) -> String {
        let parts = [self.session_key.as_str(), request_id];
        format!("{:016x}{:016x}", hash(1, &parts), hash(2, &parts))
    }

    fn request(&self, request_id: &str) -> String {
        span_hex(hash(3, &[&self.session_key, request_id]))
    }

    fn attempt(&self, request_id: &str, index: usize) -> String {
        let index = index.to_string();
        span_hex(hash(4, &[&self.session_key, request_id, &index]))
    }
}

/// What an attempt's span takes from its request's.
#[derive(Clone, Copy)]
struct ParentSpan<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    /// When the request ended: an attempt still open then ends with it.
    end: DateTime<Utc>,
    /// What the caller asked as the most tokens of the reply.
    max_tokens: Option<u32>,
}

/// What a request's span takes besides the request.
struct RequestSpan<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    end: DateTime<Utc>,
    /// `gen_ai.provider.name` of the provider that answered (else the last tried), or "".
    genai: &'static str,
    /// The attempt that answered.
    answer: Option<&'a Attempt>,
}

fn request_span(req: &Req, span: RequestSpan<'_>, finish: Option<&Finish>) -> Value {
    let mut attrs = vec![kv_str("gen_ai.operation.name", "chat")];
    if !span.genai.is_empty() {
        attrs.push(kv_str("gen_ai.provider.name", span.genai));
    }
    if let Some(n) = req.max_tokens {
        attrs.push(kv_int("gen_ai.request.max_tokens", u64::from(n)));
    }
    if let Some(stream) = req.stream {
        attrs.push(kv_bool("gen_ai.request.stream", stream));
    }
    if let Some(a) = span.answer {
        if let Some(m) = &a.response_model {
            attrs.push(kv_str("gen_ai.response.model", m));
        }
        if let Some(id) = &a.response_id {
            attrs.push(kv_str("gen_ai.response.id", id));
        }
    }
    if let Some(reason) = finish
        .filter(|f| f.ok)
        .and_then(|f| f.stop_reason.as_deref())
    {
        attrs.push(kv_str_array("gen_ai.response.finish_reasons", &[reason]));
    }
    attrs.extend([
        kv_str("breakerbox.request_id", &req.id),
        kv_str("breakerbox.source", &req.source),
        kv_str("breakerbox.chain", &req.chain.join(",")),
    ]);
    if let Some(name) = &req.chain_name {
        attrs.push(kv_str("breakerbox.chain_name", name));
    }
    attrs.push(kv_int("breakerbox.attempts", req.attempts.len() as u64));
    if let Some(f) = finish {
        if let Some(p) = &f.provider {
            attrs.push(kv_str("breakerbox.provider", p));
        }
        attrs.push(kv_double("breakerbox.cost_usd", f.cost_usd));
        attrs.push(kv_double("breakerbox.failed_cost_usd", f.failed_cost_usd));
        if f.unpriced {
            attrs.push(kv_bool("breakerbox.cost_unknown", true));
        }
        if let (false, Some(c)) = (f.ok, f.class) {
            attrs.push(kv_str("error.type", c));
        }
    }
    let mut span = json!({
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": "request",
        "kind": KIND_INTERNAL,
        "startTimeUnixNano": nanos(req.start),
        "endTimeUnixNano": nanos(span.end),
        "attributes": attrs,
        "events": req.skips,
    });
    dropped(&mut span, req.dropped_skips);
    set_status(&mut span, finish.map(Finish::status));
    span
}

/// An attempt's span; `finished` (its finish reason) when it is the attempt whose reply the
/// request returned.
fn attempt_span(
    a: Attempt,
    id: &str,
    parent: ParentSpan<'_>,
    provider: &ProviderMeta,
    finished: Option<&str>,
) -> Value {
    let end = a.end.unwrap_or(parent.end).max(a.start);
    let answered = finished.is_some();
    let mut attrs = attempt_attributes(&a, provider, parent.max_tokens);
    if let Some(reason) = finished.filter(|r| !r.is_empty()) {
        attrs.push(kv_str_array("gen_ai.response.finish_reasons", &[reason]));
    }
    let status = if let Some(f) = &a.failure {
        attrs.push(kv_str("error.type", f.class));
        attrs.push(kv_str("breakerbox.phase", f.phase));
        attrs.push(json!({"key": "breakerbox.retryable", "value": {"boolValue": f.retryable}}));
        if let Some(s) = f.status {
            attrs.push(kv_int("http.response.status_code", u64::from(s)));
        }
        Some(json!({"code": STATUS_ERROR, "message": f.message}))
    } else if answered {
        Some(json!({"code": STATUS_OK}))
    } else {
        None
    };
    let mut span = json!({
        "traceId": parent.trace_id,
        "spanId": id,
        "parentSpanId": parent.span_id,
        "name": format!("chat {}", a.model),
        "kind": KIND_CLIENT,
        "startTimeUnixNano": nanos(a.start),
        "endTimeUnixNano": nanos(end),
        "attributes": attrs,
        "events": a.events,
    });
    dropped(&mut span, a.dropped_events);
    set_status(&mut span, status);
    span
}

/// An attempt's attributes but for its failure's and finish reason's: GenAI's (and the server's),
/// then breakerbox's.
fn attempt_attributes(a: &Attempt, provider: &ProviderMeta, max_tokens: Option<u32>) -> Vec<Value> {
    let mut attrs = vec![
        kv_str("gen_ai.operation.name", "chat"),
        kv_str("gen_ai.request.model", &a.model),
    ];
    if !provider.genai.is_empty() {
        attrs.push(kv_str("gen_ai.provider.name", provider.genai));
    }
    if let Some((address, port)) = &provider.server {
        attrs.push(kv_str("server.address", address));
        attrs.push(kv_int("server.port", u64::from(*port)));
    }
    if let Some(n) = max_tokens {
        attrs.push(kv_int("gen_ai.request.max_tokens", u64::from(n)));
    }
    // The engine always streams from providers, whatever its caller asked.
    attrs.push(kv_bool("gen_ai.request.stream", true));
    if let Some(id) = &a.response_id {
        attrs.push(kv_str("gen_ai.response.id", id));
    }
    if let Some(m) = &a.response_model {
        let t = &a.tokens;
        attrs.push(kv_str("gen_ai.response.model", m));
        // The convention's input tokens include the cached ones; the events count them apart.
        let input = t
            .input
            .saturating_add(t.cache_read)
            .saturating_add(t.cache_write);
        attrs.push(kv_int("gen_ai.usage.input_tokens", input));
        attrs.push(kv_int("gen_ai.usage.output_tokens", t.output));
        attrs.push(kv_int("gen_ai.usage.cache_read.input_tokens", t.cache_read));
        attrs.push(kv_int(
            "gen_ai.usage.cache_creation.input_tokens",
            t.cache_write,
        ));
    }
    if let Some(ms) = a.first_event_ms {
        attrs.push(kv_double_exact(
            "gen_ai.response.time_to_first_chunk",
            ms as f64 / 1000.0,
        ));
    }
    attrs.push(kv_str("breakerbox.provider", &a.provider));
    if let Some(pool) = &a.pool {
        attrs.push(kv_str("breakerbox.pool", pool));
    }
    attrs.push(kv_int("breakerbox.attempt", u64::from(a.number)));
    attrs.push(kv_double("breakerbox.cost_usd", a.cost_usd));
    if a.unpriced {
        attrs.push(kv_bool("breakerbox.cost_unknown", true));
    }
    if let Some(ms) = a.first_event_ms {
        attrs.push(kv_int("breakerbox.first_event_ms", ms));
    }
    attrs
}

/// OTLP's `status`, when there is one (an unset status is left out).
fn set_status(span: &mut Value, status: Option<Value>) {
    if let (Some(status), Some(obj)) = (status, span.as_object_mut()) {
        obj.insert("status".to_string(), status);
    }
}

/// Keep a span event, or count it as dropped past [`MAX_SPAN_EVENTS`].
fn push_event(events: &mut Vec<Value>, dropped: &mut u64, event: Value) {
    if events.len() < MAX_SPAN_EVENTS {
        events.push(event);
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

/// OTLP's `droppedEventsCount`, when events were left out.
fn dropped(span: &mut Value, count: u64) {
    if let (true, Some(obj)) = (count > 0, span.as_object_mut()) {
        obj.insert("droppedEventsCount".to_string(), json!(count));
    }
}

/// FNV-1a, 64-bit, with a seed and separators: fixed by definition (unlike std's `DefaultHasher`,
/// which may change between Rust releases), so ids are stable across builds.
fn hash(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for part in parts {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // A final mix so ids differing in the last byte differ in every hex digit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// OTLP treats an all-zero span id as invalid.
fn span_hex(h: u64) -> String {
    format!("{:016x}", if h == 0 { 1 } else { h })
}

/// Unix nanoseconds as a decimal string (OTLP/JSON encodes 64-bit integers as strings). Times
/// before 1970 or beyond 2262 cannot be expressed and become 0.
fn nanos(ts: DateTime<Utc>) -> String {
    ts.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
        .to_string()
}

fn kv_str(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn kv_int(key: &str, value: u64) -> Value {
    json!({"key": key, "value": {"intValue": value.to_string()}})
}

fn kv_str_array(key: &str, values: &[&str]) -> Value {
    let values: Vec<Value> = values.iter().map(|v| json!({"stringValue": v})).collect();
    json!({"key": key, "value": {"arrayValue": {"values": values}}})
}

/// A double as it is (seconds from milliseconds need no rounding).
fn kv_double_exact(key: &str, value: f64) -> Value {
    let v = if value.is_finite() { value } else { 0.0 };
    json!({"key": key, "value": {"doubleValue": v}})
}

fn kv_bool(key: &str, value: bool) -> Value {
    json!({"key": key, "value": {"boolValue": value}})
}

fn kv_double(key: &str, value: f64) -> Value {
    // JSON has no NaN or infinity; a cost that is not finite is not a cost.
    let v = if value.is_finite() {
        (value * 1e9).round() / 1e9
    } else {
        0.0
    };
    json!({"key": key, "value": {"doubleValue": v}})
}
