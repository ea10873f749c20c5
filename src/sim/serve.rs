//! Answers one request to a simulated provider: draws the fault, then replies in the provider's
//! protocol, breaking the reply the way the fault says (or, under a `rate_limit_budget`, stating
//! what is left of it in every response's headers, and refusing once it is spent).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;

use super::budget::{self, Budget, Left};
use super::fault::FaultKind;
use super::reply::{Reply, SimRequest};
use super::rng::Rng;
use super::server::ConnControl;
use super::state::{ProviderState, Tracker};
use super::stream::{self, Disruption, Pace, StreamPlan};
use super::wire::{ErrorReply, Meta, Wire, wire};

pub(crate) async fn answer(
    provider: Arc<ProviderState>,
    conn: Arc<ConnControl>,
    body: Bytes,
) -> Response {
    answer_as(provider, conn, body, |_| {}).await
}

/// [`answer`], with what the request's path says set on the parsed request (Gemini's model and
/// method are in its path).
pub(crate) async fn answer_as(
    provider: Arc<ProviderState>,
    conn: Arc<ConnControl>,
    body: Bytes,
    from_path: impl FnOnce(&mut SimRequest),
) -> Response {
    let wire = wire(provider.spec.protocol);
    let parsed = wire.parse_request(&body);
    drop(body);
    let (mut request, parsed) = split(parsed);
    from_path(&mut request);
    let (kind, mut rng) = provider.draw(&request.prompt);
    let model = request
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| provider.spec.model.clone());
    let mut meta = wire.new_meta(&mut rng, model, request.include_usage);
    meta.echo = request.echo.clone();
    let tracker = provider.track(&meta, request.stream, &kind);

    if let Err(message) = parsed {
        tracker.reject();
        return error_response(wire, wire.invalid_request(&message, &meta), &meta);
    }
    if let Some(error) = wire.fault_error(&kind, &meta) {
        tracker.finish(Some(error.status.as_u16()));
        return error_response(wire, error, &meta);
    }
    if let Some((content_type, body)) = wire.fault_reply(&kind, &meta, request.stream) {
        tracker.finish(Some(200));
        return success(wire, &meta, content_type, Body::from(body));
    }
    match kind {
        FaultKind::Reset | FaultKind::ConnectRefused => {
            tracker.finish(None);
            conn.reset();
            return std::future::pending().await;
        }
        FaultKind::NoResponse { duration } => {
            tokio::time::sleep(duration).await;
            tracker.finish(None);
            conn.close();
            return std::future::pending().await;
        }
        _ => {}
    }

    let spec = &provider.spec;
    let reply = Reply::generate(&request, provider.seed, spec.use_tools, wire.lead_in());
    let limits = match kind {
        FaultKind::RateLimitBudget {
            requests,
            tokens,
            per,
        } => {
            let spent = super::reply::input_tokens(&request) + reply.output_tokens();
            let budget = Budget {
                requests,
                tokens,
                per,
            };
            match provider.budget.spend(budget, spent) {
                Ok(left) => budget::headers(spec.protocol, &left),
                Err(left) => return budget_spent(wire, &meta, spec.protocol, &left, tracker),
            }
        }
        _ => Vec::new(),
    };
    let (first, token) = match kind {
        FaultKind::Latency { first, token } => (first, token),
        FaultKind::SlowFirstEvent { delay } => (delay, spec.token_delay),
        _ => (spec.first_event_latency, spec.token_delay),
    };
    let pace = Pace {
        first,
        token,
        jitter: spec.jitter,
    };
    let mut response = if request.stream {
        streamed(wire, &reply, &meta, &kind, pace, rng, tracker)
    } else {
        whole(wire, &reply, &meta, &kind, pace, rng, tracker).await
    };
    add_headers(&mut response, &limits);
    response
}

/// Bedrock's `POST /model/{model}/converse-stream` or `/converse`: a well-formed `Authorization`
/// first (see [`super::bedrock::check_authorization`]), then [`answer`] with the path's model id
/// and operation handed over in the body.
pub(crate) async fn converse(
    provider: Arc<ProviderState>,
    model: String,
    operation: String,
    headers: axum::http::HeaderMap,
    conn: Arc<ConnControl>,
    body: Bytes,
) -> Response {
    use super::bedrock::{MODEL_FIELD, STREAM_FIELD};
    let wire = wire(provider.spec.protocol);
    let stream = match operation.as_str() {
        "converse-stream" => true,
        "converse" => false,
        other => {
            return not_found(format!(
                "no operation `{other}`: use converse or converse-stream"
            ));
        }
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(message) =
        super::bedrock::check_authorization(header("authorization"), header("x-amz-date"))
    {
        let meta = wire.new_meta(&mut super::rng::Rng::new(0), model, false);
        return error_response(wire, super::bedrock::unauthorized(&message), &meta);
    }
    let body = match crate::json::Fields::parse(&body) {
        Ok(fields) => Bytes::from(crate::json::with_fields(
            &fields,
            &[
                (MODEL_FIELD, serde_json::json!(model).to_string()),
                (STREAM_FIELD, stream.to_string()),
            ],
        )),
        // Not an object: the protocol's own parser says so, as a 400.
        Err(_) => body,
    };
    answer(provider, conn, body).await
}

/// The 429 of a spent budget: retry after the window turns, the headers saying nothing is left.
fn budget_spent(
    wire: &dyn Wire,
    meta: &Meta,
    protocol: crate::provider::Protocol,
    left: &Left,
    tracker: Tracker,
) -> Response {
    let retry_after = FaultKind::RateLimit {
        retry_after: left.reset_in,
    };
    let error = wire
        .fault_error(&retry_after, meta)
        .unwrap_or_else(|| ErrorReply::new(429, serde_json::json!({})));
    tracker.refuse(429, "rate_limit");
    let mut response = error_response(wire, error, meta);
    add_headers(&mut response, &budget::headers(protocol, left));
    response
}

/// Set `headers` on `response`, over any of the same name.
fn add_headers(response: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
}

/// `POST /v1/messages/count_tokens` (Anthropic's): the input tokens the reply to this body would
/// report. A fault that answers with an HTTP error answers this too.
pub(crate) async fn count_tokens(provider: Arc<ProviderState>, body: Bytes) -> Response {
    let wire = wire(provider.spec.protocol);
    // A count body is a Messages body without `max_tokens`.
    let parsed = crate::json::Fields::parse(&body)
        .ok()
        .map(|f| crate::json::with_field(&f, "max_tokens", &serde_json::json!(1)))
        .ok_or_else(|| "the request body must be a JSON object".to_string())
        .and_then(|b| wire.parse_request(b.as_bytes()));
    let (request, parsed) = split(parsed);
    let (kind, mut rng) = provider.draw(&request.prompt);
    let meta = wire.new_meta(&mut rng, provider.spec.model.clone(), false);
    if let Err(message) = parsed {
        return error_response(wire, wire.invalid_request(&message, &meta), &meta);
    }
    if let Some(error) = wire.fault_error(&kind, &meta) {
        return error_response(wire, error, &meta);
    }
    let count = serde_json::json!({"input_tokens": super::reply::input_tokens(&request)});
    success(
        wire,
        &meta,
        "application/json",
        Body::from(count.to_string()),
    )
}

/// A parsed request, or a default one to draw the fault with and the message for a 400 (the body's
/// request is moved out, never copied: its prompt can be long).
fn split(parsed: Result<SimRequest, String>) -> (SimRequest, Result<(), String>) {
    match parsed {
        Ok(request) => (request, Ok(())),
        Err(message) => (SimRequest::default(), Err(message)),
    }
}

/// A 200 with the request id, as both providers send it.
fn success(wire: &dyn Wire, meta: &Meta, content_type: &'static str, body: Body) -> Response {
    let headers = [
        (header::CONTENT_TYPE.as_str(), content_type),
        (wire.request_id_header(), meta.request_id.as_str()),
        (header::CACHE_CONTROL.as_str(), "no-cache"),
    ];
    (headers, body).into_response()
}

fn streamed(
    wire: &dyn Wire,
    reply: &Reply,
    meta: &Meta,
    kind: &FaultKind,
    pace: Pace,
    rng: Rng,
    tracker: Tracker,
) -> Response {
    let mut frames = wire.stream(reply, meta);
    if *kind == FaultKind::NoDone {
        // The last frame is the end marker in every protocol.
        frames.pop();
    }
    let at = |after: &u32| stream::position(&frames, *after);
    let disruption = match kind {
        FaultKind::Stall { after, duration } => Some((at(after), Disruption::Stall(*duration))),
        FaultKind::StreamCut { after } => Some((at(after), Disruption::Cut)),
        FaultKind::MidStreamError { after, error_type } => {
            let at = at(after);
            Some((
                at,
                Disruption::Replace(wire.stream_error(error_type, meta, at)),
            ))
        }
        FaultKind::Malformed { after } => {
            let at = at(after);
            Some((at, Disruption::Replace(wire.malformed(meta, at))))
        }
        _ => None,
    };
    let plan = StreamPlan {
        frames,
        pace,
        rng,
        disruption,
    };
    success(
        wire,
        meta,
        wire.stream_content_type(),
        stream::body(plan, tracker),
    )
}

/// Not streamed: the client waits for the whole generation, then gets one JSON body.
async fn whole(
    wire: &dyn Wire,
    reply: &Reply,
    meta: &Meta,
    kind: &FaultKind,
    pace: Pace,
    mut rng: Rng,
    tracker: Tracker,
) -> Response {
    let tokens = u32::try_from(reply.output_tokens()).unwrap_or(u32::MAX);
    let mut wait = rng
        .jitter(pace.first, pace.jitter)
        .saturating_add(rng.jitter(pace.token.saturating_mul(tokens), pace.jitter));
    if let FaultKind::Stall { duration, .. } = kind {
        wait = wait.saturating_add(*duration);
    }
    tokio::time::sleep(wait).await;
    if let FaultKind::MidStreamError { error_type, .. } = kind {
        // Without a stream there is no "mid": answer with the HTTP error of that type.
        let as_http = match error_type.as_str() {
            "overloaded_error" => FaultKind::Overloaded {
                status: None,
                retry_after: None,
            },
            _ => FaultKind::ServerError { status: 500 },
        };
        if let Some(error) = wire.fault_error(&as_http, meta) {
            tracker.finish(Some(error.status.as_u16()));
            return error_response(wire, error, meta);
        }
    }
    let json = Bytes::from(wire.message(reply, meta).to_string());
    tracker.finish(Some(200));
    match kind {
        // Promise the whole body, send half, then abort.
        FaultKind::StreamCut { .. } => {
            let half = json.slice(..json.len() / 2);
            let body = futures::stream::once(async { Ok(half) })
                .chain(futures::stream::once(async { Err(stream::cut().await) }));
            let mut response = success(wire, meta, "application/json", Body::from_stream(body));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(json.len()));
            response
        }
        FaultKind::Malformed { .. } => success(
            wire,
            meta,
            "application/json",
            Body::from(json.slice(..json.len() / 2)),
        ),
        _ => success(wire, meta, "application/json", Body::from(json)),
    }
}

pub(crate) fn error_response(wire: &dyn Wire, error: ErrorReply, meta: &Meta) -> Response {
    let mut response = (error.status, axum::Json(error.body)).into_response();
    let headers = response.headers_mut();
    for (name, value) in error
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain([(wire.request_id_header(), meta.request_id.as_str())])
    {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// A 404 shaped so both official clients can read its message.
pub(crate) fn not_found(message: String) -> Response {
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": "not_found_error", "message": message},
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
