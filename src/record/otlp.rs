//! A recording as OpenTelemetry spans in the OTLP/JSON encoding (what an OTLP/HTTP collector, Jaeger,
//! Grafana Tempo or Langfuse accept): one span per request, one child span per attempt, with the
//! GenAI semantic-convention attributes (`gen_ai.*`) and breakerbox's own (`breakerbox.*`).
//!
//! Ids are derived from the session's start time and the request id with a fixed hash, so exporting
//! the same file twice gives the same trace and span ids (and a re-import deduplicates).

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::SessionHeader;
use crate::event::{Event, EventKind, Outcome};

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
    start: DateTime<Utc>,
    attempts: Vec<Attempt>,
    /// `attempt_skipped` and `rewind`, as span events.
    skips: Vec<Value>,
    dropped_skips: u64,
}

struct Attempt {
    number: u32,
    provider: String,
    model: String,
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    response_model: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cost_usd: f64,
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
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [
                    kv_str("service.name", "breakerbox"),
                    kv_str("service.version", &header.breakerbox_version),
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
    let session_key = header.started_at.timestamp_micros().to_string();
    let protocols: HashMap<&str, &str> = header
        .providers
        .iter()
        .map(|p| (p.name.as_str(), p.protocol.as_str()))
        .collect();
    let mut open: HashMap<String, Req> = HashMap::new();
    let mut spans: Vec<Value> = Vec::new();
    let mut order = 0u64;
    let mut last_ts: Option<DateTime<Utc>> = None;

    // Request ids in the order they started, to find the oldest when too many are open.
    let mut started: VecDeque<(u64, String)> = VecDeque::new();
    for event in events {
        spans.drain(..).for_each(&mut sink);
        let ts = event.ts;
        last_ts = Some(last_ts.map_or(ts, |t| t.max(ts)));
        match event.kind {
            EventKind::RequestStarted {
                request_id,
                source,
                chain,
                ..
            } => {
                order += 1;
                let source = serde_json::to_value(source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                // A repeated id would collide with the earlier span: finish the earlier one first.
                if let Some(prev) = open.remove(&request_id) {
                    emit(&mut spans, &session_key, &protocols, prev, ts, None);
                }
                // Too many open: the oldest still open goes out unfinished.
                while open.len() >= MAX_OPEN {
                    let Some((order, id)) = started.pop_front() else {
                        break;
                    };
                    if open.get(&id).is_some_and(|r| r.order == order) {
                        if let Some(oldest) = open.remove(&id) {
                            emit(&mut spans, &session_key, &protocols, oldest, ts, None);
                        }
                    }
                }
                started.push_back((order, request_id.clone()));
                if started.len() > 2 * MAX_OPEN {
                    // Ids of finished requests pile up at the front: drop them.
                    started.retain(|(order, id)| open.get(id).is_some_and(|r| r.order == *order));
                }
                open.insert(
                    request_id.clone(),
                    Req {
                        order,
                        id: request_id,
                        source,
                        chain,
                        start: ts,
                        attempts: Vec::new(),
                        skips: Vec::new(),
                        dropped_skips: 0,
                    },
                );
            }
            EventKind::AttemptStarted {
                request_id,
                attempt,
                provider,
                model,
            } => {
                if let Some(req) = open
                    .get_mut(&request_id)
                    .filter(|r| r.attempts.len() < MAX_ATTEMPTS)
                {
                    req.attempts.push(Attempt {
                        number: attempt,
                        provider,
                        model,
                        start: ts,
                        end: None,
                        response_model: None,
                        input_tokens: 0,
                        output_tokens: 0,
                        cache_read_tokens: 0,
                        cache_write_tokens: 0,
                        cost_usd: 0.0,
                        first_event_ms: None,
                        failure: None,
                        events: Vec::new(),
                        dropped_events: 0,
                    });
                }
            }
            EventKind::AttemptFailed {
                request_id,
                attempt,
                provider,
                phase,
                class,
                retryable,
                status,
                message,
                ..
            } => {
                if let Some(a) = find_attempt(&mut open, &request_id, &provider, Some(attempt)) {
                    a.end = Some(ts);
                    a.failure = Some(Failure {
                        class: class.as_str(),
                        phase: phase.as_str(),
                        retryable,
                        message,
                        status,
                    });
                }
            }
            EventKind::AttemptSkipped {
                request_id,
                provider,
                reason,
            } => {
                if let Some(req) = open.get_mut(&request_id) {
                    push_event(
                        &mut req.skips,
                        &mut req.dropped_skips,
                        json!({
                            "timeUnixNano": nanos(ts),
                            "name": "attempt_skipped",
                            "attributes": [
                                kv_str("breakerbox.provider", &provider),
                                kv_str("breakerbox.reason", reason.as_str()),
                            ],
                        }),
                    );
                }
            }
            EventKind::FirstEvent {
                request_id,
                attempt,
                provider,
                latency_ms,
            } => {
                if let Some(a) = find_attempt(&mut open, &request_id, &provider, Some(attempt)) {
                    a.first_event_ms = Some(latency_ms);
                }
            }
            EventKind::Rewind {
                request_id,
                provider,
                discarded_chars,
                reason,
            } => {
                if let Some(a) = find_attempt(&mut open, &request_id, &provider, None) {
                    push_event(
                        &mut a.events,
                        &mut a.dropped_events,
                        json!({
                            "timeUnixNano": nanos(ts),
                            "name": "rewind",
                            "attributes": [
                                kv_int("breakerbox.discarded_chars", discarded_chars),
                                kv_str("breakerbox.reason", reason.as_str()),
                            ],
                        }),
                    );
                }
            }
            EventKind::Usage {
                request_id,
                provider,
                model,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                cost_usd,
                ..
            } => {
                if let Some(a) = find_attempt(&mut open, &request_id, &provider, None) {
                    a.response_model = Some(model);
                    a.input_tokens = a.input_tokens.saturating_add(input_tokens);
                    a.output_tokens = a.output_tokens.saturating_add(output_tokens);
                    a.cache_read_tokens = a.cache_read_tokens.saturating_add(cache_read_tokens);
                    a.cache_write_tokens = a.cache_write_tokens.saturating_add(cache_write_tokens);
                    if cost_usd.is_finite() {
                        a.cost_usd += cost_usd;
                    }
                }
            }
            EventKind::RequestFinished {
                request_id,
                outcome,
                provider,
                class,
                message,
                cost_usd,
                failed_cost_usd,
                ..
            } => {
                if let Some(req) = open.remove(&request_id) {
                    let fin = Finish {
                        ok: outcome == Outcome::Ok,
                        provider,
                        class: class.map(|c| c.as_str()),
                        message,
                        cost_usd,
                        failed_cost_usd,
                    };
                    emit(&mut spans, &session_key, &protocols, req, ts, Some(fin));
                }
            }
            EventKind::SessionStarted { .. }
            | EventKind::TextDelta { .. }
            | EventKind::BreakerChanged { .. }
            | EventKind::ProviderFlagged { .. }
            | EventKind::OperatorAction { .. } => {}
        }
    }

    // Unfinished requests, in the order they started.
    let end = last_ts.unwrap_or(header.started_at);
    let rest: BTreeMap<u64, Req> = open.into_values().map(|r| (r.order, r)).collect();
    for req in rest.into_values() {
        emit(&mut spans, &session_key, &protocols, req, end, None);
    }
    spans.drain(..).for_each(&mut sink);
}

struct Finish {
    ok: bool,
    provider: Option<String>,
    class: Option<&'static str>,
    message: Option<String>,
    cost_usd: f64,
    failed_cost_usd: f64,
}

/// The attempt an event belongs to: the latest with that provider (and number, when given).
fn find_attempt<'a>(
    open: &'a mut HashMap<String, Req>,
    request_id: &str,
    provider: &str,
    number: Option<u32>,
) -> Option<&'a mut Attempt> {
    let req = open.get_mut(request_id)?;
    let exact = req
        .attempts
        .iter()
        .rposition(|a| a.provider == provider && number.is_none_or(|n| n == a.number));
    let index = exact.or_else(|| req.attempts.iter().rposition(|a| a.provider == provider))?;
    req.attempts.get_mut(index)
}

fn emit(
    spans: &mut Vec<Value>,
    session_key: &str,
    protocols: &HashMap<&str, &str>,
    req: Req,
    end: DateTime<Utc>,
    finish: Option<Finish>,
) {
    let trace_id = format!(
        "{:016x}{:016x}",
        hash(1, &[session_key, &req.id]),
        hash(2, &[session_key, &req.id])
    );
    let span_id = span_hex(hash(3, &[session_key, &req.id]));
    let end = end.max(req.start);

    let mut attrs = vec![
        kv_str("gen_ai.operation.name", "chat"),
        kv_str("breakerbox.request_id", &req.id),
        kv_str("breakerbox.source", &req.source),
        kv_str("breakerbox.chain", &req.chain.join(",")),
        kv_int("breakerbox.attempts", req.attempts.len() as u64),
    ];
    let mut status = None;
    if let Some(f) = &finish {
        if let Some(p) = &f.provider {
            attrs.push(kv_str("breakerbox.provider", p));
        }
        attrs.push(kv_double("breakerbox.cost_usd", f.cost_usd));
        attrs.push(kv_double("breakerbox.failed_cost_usd", f.failed_cost_usd));
        status = Some(if f.ok {
            json!({"code": STATUS_OK})
        } else {
            if let Some(c) = f.class {
                attrs.push(kv_str("error.type", c));
            }
            let message = f
                .message
                .clone()
                .or_else(|| f.class.map(str::to_string))
                .unwrap_or_else(|| "error".to_string());
            json!({"code": STATUS_ERROR, "message": message})
        });
    }
    let mut span = json!({
        "traceId": trace_id,
        "spanId": span_id,
        "name": "request",
        "kind": KIND_INTERNAL,
        "startTimeUnixNano": nanos(req.start),
        "endTimeUnixNano": nanos(end),
        "attributes": attrs,
        "events": req.skips,
    });
    dropped(&mut span, req.dropped_skips);
    if let (Some(status), Some(obj)) = (status, span.as_object_mut()) {
        obj.insert("status".to_string(), status);
    }
    spans.push(span);

    let answered = finish
        .as_ref()
        .filter(|f| f.ok)
        .and_then(|f| f.provider.as_deref());
    // The last attempt on the answering provider is the one that answered.
    let winner = answered.and_then(|p| req.attempts.iter().rposition(|a| a.provider == p));
    for (i, a) in req.attempts.into_iter().enumerate() {
        let index = i.to_string();
        let id = span_hex(hash(4, &[session_key, &req.id, &index]));
        let a_end = a.end.unwrap_or(end).max(a.start);
        let system = protocols.get(a.provider.as_str()).copied().unwrap_or("");
        let mut attrs = vec![
            kv_str("gen_ai.operation.name", "chat"),
            kv_str("gen_ai.request.model", &a.model),
        ];
        if !system.is_empty() {
            attrs.push(kv_str("gen_ai.system", system));
            attrs.push(kv_str("gen_ai.provider.name", system));
        }
        if let Some(m) = &a.response_model {
            attrs.push(kv_str("gen_ai.response.model", m));
            attrs.push(kv_int("gen_ai.usage.input_tokens", a.input_tokens));
            attrs.push(kv_int("gen_ai.usage.output_tokens", a.output_tokens));
            attrs.push(kv_int(
                "breakerbox.usage.cache_read_tokens",
                a.cache_read_tokens,
            ));
            attrs.push(kv_int(
                "breakerbox.usage.cache_write_tokens",
                a.cache_write_tokens,
            ));
        }
        attrs.push(kv_str("breakerbox.provider", &a.provider));
        attrs.push(kv_int("breakerbox.attempt", u64::from(a.number)));
        attrs.push(kv_double("breakerbox.cost_usd", a.cost_usd));
        if let Some(ms) = a.first_event_ms {
            attrs.push(kv_int("breakerbox.first_event_ms", ms));
        }
        let status = if let Some(f) = &a.failure {
            attrs.push(kv_str("error.type", f.class));
            attrs.push(kv_str("breakerbox.phase", f.phase));
            attrs.push(json!({"key": "breakerbox.retryable", "value": {"boolValue": f.retryable}}));
            if let Some(s) = f.status {
                attrs.push(kv_int("http.response.status_code", u64::from(s)));
            }
            Some(json!({"code": STATUS_ERROR, "message": f.message}))
        } else if winner == Some(i) {
            Some(json!({"code": STATUS_OK}))
        } else {
            None
        };
        let mut span = json!({
            "traceId": trace_id,
            "spanId": id,
            "parentSpanId": span_id,
            "name": format!("chat {}", a.model),
            "kind": KIND_CLIENT,
            "startTimeUnixNano": nanos(a.start),
            "endTimeUnixNano": nanos(a_end),
            "attributes": attrs,
            "events": a.events,
        });
        dropped(&mut span, a.dropped_events);
        if let (Some(status), Some(obj)) = (status, span.as_object_mut()) {
            obj.insert("status".to_string(), status);
        }
        spans.push(span);
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

fn kv_double(key: &str, value: f64) -> Value {
    // JSON has no NaN or infinity; a cost that is not finite is not a cost.
    let v = if value.is_finite() {
        (value * 1e9).round() / 1e9
    } else {
        0.0
    };
    json!({"key": key, "value": {"doubleValue": v}})
}
