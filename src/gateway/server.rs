//! The gateway's HTTP server: `/v1/chat/completions`, `/v1/messages` and `/v1/responses` through the
//! failover engine,
//! and `/events`, `/control`, `/metrics`, `/healthz` for the people watching.
//!
//! ```text
//!  client ─► parse (its protocol) ─► route by model ─► engine.send ─┬─ live:     hold until the first
//!                                                                   │            content, then forward
//!                                                                   ├─ buffered: hold until Done
//!                                                                   └─ whole:    hold until Done, one JSON
//!  ◄── encoded in the client's protocol (errors too), whoever answered
//! ```
//!
//! Nothing reaches a client before the engine's first *content* event (text, thinking, a tool call)
//! or the end of the reply, so a failover before then is invisible and an error before then has its
//! proper HTTP status. Dropping a response body (the client went away) drops the engine's stream,
//! which cancels the upstream request.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth;
use super::events::History;
use super::passthrough;
use super::per_request::{self, Answered, Asked};
use super::responses::{self, ResponsesEncoder};
use super::routes::{ChainRefused, Route, Routes};
use super::wire::{self, AnthropicEncoder, Encode, OpenAiEncoder};
use crate::config::GatewaySection;
use crate::engine::failover::{FailoverEngine, RequestMeta};
use crate::engine::progress::Progress;
use crate::event::{Bus, EventKind, Mode, Received, RejectReason, Source};
use crate::metrics::{self, Metrics};
use crate::protocol;
use crate::provider::{
    ApiKey, Content, Credentials, ErrorClass, Message, Original, Phase, Protocol, ProviderError,
    ProviderStream, Request, Role, StreamEvent,
};
use crate::session::Controller;
use crate::session::command::{self, Command};
use crate::sim::Simulator;

/// Request bodies up to this size are read (agents send long contexts).
const BODY_LIMIT: usize = 32 * 1024 * 1024;
/// `/control` commands are small.
const CONTROL_BODY_LIMIT: usize = 64 * 1024;
/// Frames already waiting are sent together, up to about this many bytes per write.
const WRITE_BATCH: usize = 16 * 1024;
/// How long open responses may finish at shutdown before their connections are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Everything a request handler needs.
pub struct Gateway {
    routes: Routes,
    token: Option<String>,
    /// Trip / reset / faults / prompts / load from `/control`: the session's control plane, the
    /// same one the console's keys reach when there is a console.
    control: Option<Arc<Controller>>,
    /// Provider names, for `/control` to check against.
    providers: Vec<String>,
    mode: Mode,
    simulated: bool,
    history: History,
    metrics: Arc<Mutex<Metrics>>,
    /// Cancelled when the gateway stops: ends the `/events` streams, which never end otherwise.
    stop: CancellationToken,
    limits: GatewaySection,
    /// One permit per open client connection.
    connections: Arc<Semaphore>,
    /// Connections refused because every permit was taken.
    refused: AtomicU64,
    /// For `request_rejected`: what the gateway refuses itself is an event like any other.
    bus: Bus,
    /// The live OTLP exporter's counts, when spans are exported (`--otlp-endpoint`).
    otlp: std::sync::OnceLock<Arc<crate::telemetry::OtlpStats>>,
}

/// What [`start`] needs.
pub struct GatewayParts {
    pub routes: Routes,
    pub bus: Bus,
    pub token: Option<String>,
    pub providers: Vec<String>,
    /// `Live` or `Demo`: where the providers are.
    pub mode: Mode,
    pub sim: Option<Arc<Simulator>>,
    pub limits: GatewaySection,
    /// The session's control plane, when the caller has one (`serve` with its console); else one
    /// is made on the first route's engine.
    pub control: Option<Arc<Controller>>,
}

/// A running gateway. Dropping it does not stop it; call [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Running {
    /// Stop accepting, give open responses a moment to finish, then drop them.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.close();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, self.tasks.wait()).await;
    }
}

/// Start serving on `listener`. Call before the session's first event is published, so that
/// `/events` and `/metrics` see the whole session.
pub fn start(parts: GatewayParts, listener: TcpListener) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    let history = History::follow(&parts.bus);
    let metrics = Arc::new(Mutex::new(Metrics::new()));
    follow_metrics(&parts.bus, Arc::clone(&metrics));
    let control = parts.control.or_else(|| {
        let engine = parts.routes.default_engine()?;
        let controller = Controller::new(engine, parts.providers.clone(), parts.sim.clone());
        Some(Arc::new(controller))
    });
    let stop = CancellationToken::new();
    let gateway = Arc::new(Gateway {
        routes: parts.routes,
        token: parts.token,
        control,
        providers: parts.providers,
        mode: parts.mode,
        simulated: parts.sim.is_some(),
        history,
        metrics,
        stop: stop.clone(),
        limits: parts.limits,
        connections: Arc::new(Semaphore::new(parts.limits.max_connections as usize)),
        refused: AtomicU64::new(0),
        otlp: std::sync::OnceLock::new(),
        bus: parts.bus.clone(),
    });
    let router = router(Arc::clone(&gateway));
    let tasks = TaskTracker::new();
    tasks.spawn(accept(
        listener,
        router,
        Arc::clone(&gateway),
        tasks.clone(),
    ));
    Ok(Running {
        addr,
        gateway,
        stop,
        tasks,
    })
}

fn follow_metrics(bus: &Bus, metrics: Arc<Mutex<Metrics>>) {
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        while let Some(received) = crate::event::next(&mut rx).await {
            let mut m = metrics.lock().unwrap_or_else(|e| e.into_inner());
            match received {
                Received::Event(event) => m.apply(&event),
                Received::Lagged(n) => m.missed(n),
            }
        }
    });
}

async fn accept(listener: TcpListener, router: Router, gw: Arc<Gateway>, tasks: TaskTracker) {
    loop {
        tokio::select! {
            () = gw.stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match Arc::clone(&gw.connections).try_acquire_owned() {
                    Ok(permit) => {
                        tasks.spawn(connection(
                            stream,
                            router.clone(),
                            gw.stop.clone(),
                            gw.limits,
                            permit,
                        ));
                    }
                    Err(_) => {
                        gw.refused.fetch_add(1, Ordering::Relaxed);
                        refuse(stream, gw.limits.max_connections);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("gateway accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Over the connection cap: a 503 at once, without reading the request, and the connection closed.
/// Written without waiting, so a flood of refusals costs no task and no memory.
fn refuse(stream: TcpStream, cap: u32) {
    let body = json!({"type": "error", "error": {"type": "overloaded_error", "message":
        format!("the gateway has {cap} client connections open, its limit ([gateway] \
                 max_connections); try again shortly")}})
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // What already arrived is read first: closing with unread data would reset the connection
    // and the client might never see the answer.
    let mut sink = [0u8; 4096];
    while matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {}
    let _ = stream.try_write(response.as_bytes());
}

/// The answer to a connection that did not send a whole request in time.
fn too_slow(limit: Duration) -> Vec<u8> {
    let body = json!({"type": "error", "error": {"type": "timeout_error", "message":
        format!("no complete request headers within {limit:?} ([gateway] header_timeout)")}})
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One client connection. Before its first request's headers are complete it has
/// `header_timeout`; between requests `idle_timeout` (hyper's header timer, which starts when
/// the connection goes idle); a request body has `body_timeout` (in the handlers). A response in
/// progress has no limit here: replies stream as long as they need.
async fn connection(
    stream: TcpStream,
    router: Router,
    stop: CancellationToken,
    limits: GatewaySection,
    _permit: OwnedSemaphorePermit,
) {
    // Tokens go out one small write at a time; don't let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let (started, mut first_request) = tokio::sync::watch::channel(false);
    let inner = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |request| {
        started.send_replace(true);
        inner.call(request)
    });
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout.0)
        .serve_connection(
            TokioIo::new(super::reject::EmptyErrors::new(stream)),
            service,
        );
    let first_headers = tokio::time::sleep(limits.header_timeout.0);
    tokio::pin!(first_headers);
    let mut waiting = true;
    loop {
        tokio::select! {
            result = &mut conn => {
                if let Err(e) = result {
                    tracing::debug!("gateway connection ended: {e}");
                }
                return;
            }
            _ = first_request.changed(), if waiting => waiting = false,
            () = &mut first_headers, if waiting => {
                let mut socket = conn.into_parts().io.into_inner();
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    socket.write_all(&too_slow(limits.header_timeout.0)),
                )
                .await;
                let _ = socket.shutdown().await;
                return;
            }
            () = stop.cancelled() => {
                std::pin::Pin::new(&mut conn).graceful_shutdown();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut conn).await;
                return;
            }
        }
    }
}

/// The gateway's routes: the agents' (`/v1`, behind [`agent_auth`]), the operator's (`/events`,
/// `/control`, behind [`operator_auth`]) and the open ones (`/metrics`, `/healthz`).
pub fn router(gateway: Arc<Gateway>) -> Router {
    let agents = Router::new()
        .route(protocol::chat::PATH, post(openai_chat))
        .route(protocol::anthropic::PATH, post(anthropic_messages))
        .route(
            protocol::responses::PATH,
            post(openai_responses).get(responses_websocket),
        )
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1beta/models/{target}", post(gemini_generate))
        .route("/v1/models/{target}", post(gemini_generate))
        .route("/model/{model}/{operation}", post(converse))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(super::azure::deployment_chat),
        )
        .route(protocol::azure::V1_PATH, post(super::azure::v1_chat))
        .route("/v1/models", get(models))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&gateway),
            agent_auth,
        ));
    let operators = Router::new()
        .route("/events", get(events))
        .route("/control", post(control))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&gateway),
            operator_auth,
        ));
    Router::new()
        .merge(agents)
        .merge(operators)
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway)
}

/// With a token, `/v1` wants it (see [`Gateway::v1_authorized`]); a refusal is an error in the
/// protocol of the route asked for, so that the client's SDK reports it as an auth error.
async fn agent_auth(
    State(gw): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if gw.v1_authorized(request.headers()) {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let protocol = if path == protocol::chat::PATH {
        Protocol::Openai
    } else if path.starts_with("/openai/") {
        Protocol::Azure
    } else if path == protocol::responses::PATH {
        Protocol::OpenaiResponses
    } else if path.starts_with("/v1beta/") || path.starts_with("/v1/models/") {
        Protocol::Gemini
    } else if path.starts_with("/model/") {
        Protocol::Bedrock
    } else if path.starts_with(protocol::anthropic::PATH)
        || request.headers().contains_key("anthropic-version")
    {
        Protocol::Anthropic
    } else {
        Protocol::Openai
    };
    let message = "this gateway needs its token: send it as the API key, or in x-breakerbox-token";
    let response = gateway_error(protocol, ErrorClass::Auth, message);
    gw.rejected(protocol, RejectReason::Auth, &response, message);
    response
}

/// With a token, `/events` and `/control` want it as a bearer token.
async fn operator_auth(
    State(gw): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if gw.operator_authorized(request.headers()) {
        next.run(request).await
    } else {
        unauthorized()
    }
}

// ---------------------------------------------------------------------------------------------
// /v1: the agents' traffic
// ---------------------------------------------------------------------------------------------

async fn openai_chat(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    gw.proxy(Protocol::Openai, &headers, body).await
}

/// Bedrock's `POST /model/{modelId}/converse-stream` and `/converse`: the path's model id and
/// operation are handed to the parser in headers of the gateway's own (set here, over any sent).
async fn converse(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Path((model, operation)): axum::extract::Path<(String, String)>,
    mut headers: HeaderMap,
    body: Body,
) -> Response {
    let stream = match operation.as_str() {
        "converse-stream" => true,
        "converse" => false,
        other => {
            return gateway_error(
                Protocol::Bedrock,
                ErrorClass::NotFound,
                &format!(
                    "no operation `{other}`: POST /model/{{modelId}}/converse-stream or /converse"
                ),
            );
        }
    };
    let (Ok(model), Ok(stream)) = (
        HeaderValue::from_str(&model),
        HeaderValue::from_str(&stream.to_string()),
    ) else {
        return gateway_error(
            Protocol::Bedrock,
            ErrorClass::BadRequest,
            "invalid model id",
        );
    };
    headers.insert(crate::gateway::bedrock::MODEL_HEADER, model);
    headers.insert(crate::gateway::bedrock::STREAM_HEADER, stream);
    gw.proxy(Protocol::Bedrock, &headers, body).await
}

async fn openai_responses(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.proxy(Protocol::OpenaiResponses, &headers, body).await
}

/// `GET /v1/responses`: Codex asks for a WebSocket here before it posts. A 426 is the one answer
/// that makes it fall back to HTTP at once, for the session (any other status it retries first).
async fn responses_websocket() -> Response {
    json_response(
        426,
        &json!({"error": {"message": "this gateway serves the Responses API over HTTP only: POST \
                                      /v1/responses (streaming with \"stream\": true)",
                          "type": "invalid_request_error", "param": Value::Null,
                          "code": "upgrade_required"}}),
        None,
    )
}

/// `POST /v1beta/models/{model}:streamGenerateContent` and `:generateContent` (Gemini): the
/// model and whether it streams are in the path.
async fn gemini_generate(
    State(gw): State<Arc<Gateway>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match super::gemini::method(&target) {
        Ok(from_path) => {
            gw.proxy_from(Protocol::Gemini, &headers, body, Some(from_path), None)
                .await
        }
        Err(e) => json_response(e.status, &e.to_json(Protocol::Gemini), None),
    }
}

async fn anthropic_messages(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.proxy(Protocol::Anthropic, &headers, body).await
}

/// `POST /v1/messages/count_tokens`: asked of the first Anthropic target of the model's route (or
/// of the chain its `x-breakerbox-chain` names; only the first target with failover off) whose
/// breaker is not open (each in turn), else estimated — about four characters a token — and then
/// marked `breakerbox-estimate: true`. Counting is not traffic: no events, no breaker change.
async fn count_tokens(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    let protocol = Protocol::Anthropic;
    let steer = match per_request::asked(&headers) {
        Ok(steer) => steer,
        Err(bad) => return bad_header(protocol, bad.header, &bad.message),
    };
    let body = match read_body(body, &headers, BODY_LIMIT, gw.limits.body_timeout.0).await {
        Ok(body) => body,
        Err(unread) => return gateway_error(protocol, unread.class, &unread.message),
    };
    let Ok(fields) = crate::json::Fields::parse(&body) else {
        return gateway_error(
            protocol,
            ErrorClass::BadRequest,
            "the request body must be a JSON object",
        );
    };
    let Some(model) = fields
        .value("model")
        .and_then(|m| m.as_str().map(str::to_string))
    else {
        return gateway_error(protocol, ErrorClass::BadRequest, "model: required");
    };
    let Some(route) = gw.routes.get(&model) else {
        return gateway_error(
            protocol,
            ErrorClass::NotFound,
            &format!("model `{model}` has no route on this gateway"),
        );
    };
    let asked = Request {
        as_requested: route.as_requested(protocol, &model),
        ..Request::default()
    };
    let engine = match gw.engine_asked(protocol, route, &steer, false) {
        Ok(engine) => engine,
        Err(refused) => return refused,
    };
    let tried = if steer.failover { usize::MAX } else { 1 };
    for target in engine.targets().iter().take(tried) {
        let open = matches!(
            engine.shared().breakers.state(&target.breaker_key),
            crate::engine::breaker::BreakerState::Open
                | crate::engine::breaker::BreakerState::ForcedOpen
        );
        if open || target.provider.protocol() != Some(protocol) {
            continue;
        }
        let mut target_model = target.model_for(&asked);
        if target_model.is_empty() {
            target_model = target.provider.default_model().to_string();
        }
        let Some(count) = target.provider.count_tokens(crate::json::with_field(
            &fields,
            "model",
            &json!(target_model),
        )) else {
            continue;
        };
        if let Ok(tokens) = count.await {
            return json_response(200, &json!({"input_tokens": tokens}), None);
        }
    }
    let mut response = json_response(
        200,
        &json!({"input_tokens": (body.len() as u64).div_ceil(4)}),
        None,
    );
    response
        .headers_mut()
        .insert("breakerbox-estimate", HeaderValue::from_static("true"));
    response
}

impl Gateway {
    async fn proxy(&self, protocol: Protocol, headers: &HeaderMap, body: Body) -> Response {
        self.proxy_from(protocol, headers, body, None, None).await
    }

    /// [`Gateway::proxy`], for a client whose path names the model (an Azure deployment's): the
    /// body's `model` becomes `model`.
    pub(super) async fn proxy_as(
        &self,
        protocol: Protocol,
        headers: &HeaderMap,
        body: Body,
        model: Option<&str>,
    ) -> Response {
        self.proxy_from(protocol, headers, body, None, model).await
    }

    /// [`Gateway::proxy`] for a protocol whose path names the model and whether it streams
    /// (Gemini's `{model}:{method}`: `from_path`), or the model alone (`model`, set in the body).
    async fn proxy_from(
        &self,
        protocol: Protocol,
        headers: &HeaderMap,
        body: Body,
        from_path: Option<(String, bool)>,
        model: Option<&str>,
    ) -> Response {
        let asked = match per_request::asked(headers) {
            Ok(asked) => asked,
            Err(bad) => {
                let response = bad_header(protocol, bad.header, &bad.message);
                self.rejected(protocol, RejectReason::BadHeader, &response, &bad.message);
                return response;
            }
        };
        let body = match read_body(body, headers, BODY_LIMIT, self.limits.body_timeout.0).await {
            Ok(body) => body,
            Err(unread) => {
                let reason = match unread.status {
                    413 => RejectReason::TooLarge,
                    408 => RejectReason::BodyTimeout,
                    _ => RejectReason::BadRequest,
                };
                let err = ProviderError::new(
                    "gateway",
                    unread.class,
                    Phase::Connect,
                    unread.message.clone(),
                );
                let (_, body, _) = wire::error_response(protocol, &err);
                let response = json_response(unread.status, &body, None);
                self.rejected(protocol, reason, &response, &unread.message);
                return response;
            }
        };
        let body = match (model, crate::json::Fields::parse(&body)) {
            (Some(model), Ok(fields)) => {
                Bytes::from(crate::json::with_field(&fields, "model", &json!(model)))
            }
            _ => body,
        };
        let (mut request, options, inbound) = match self.parse(protocol, headers, body, from_path) {
            Ok(parsed) => parsed,
            Err(refused) => {
                let message = "the request body is not a request of its protocol";
                self.rejected(protocol, RejectReason::BadRequest, &refused, message);
                return refused;
            }
        };
        let Some(route) = self.routes.get(&options.model) else {
            let message = format!(
                "model `{}` has no route on this gateway; the routes are: {}",
                crate::text::cut(&options.model, 128),
                self.routes.names().join(", ")
            );
            let response = gateway_error(protocol, ErrorClass::NotFound, &message);
            self.rejected(protocol, RejectReason::UnknownModel, &response, &message);
            return response;
        };
        // The client's model name picks the route; each target asks for its own model, except that
        // a route by pattern asks targets of the client's protocol for the model it named.
        request.model.clear();
        request.as_requested = route.as_requested(protocol, &options.model);
        if route.passthrough {
            request.credentials = self
                .client_key(protocol, headers)
                .map(|key| Credentials { protocol, key });
        }
        let streaming = options.stream;
        let engine = match self.engine_asked(protocol, route, &asked, streaming) {
            Ok(engine) => engine,
            Err(refused) => {
                let message = "x-breakerbox-chain names no chain usable here";
                self.rejected(protocol, RejectReason::BadHeader, &refused, message);
                return refused;
            }
        };
        let meta = RequestMeta {
            prompt: last_user_text(&request),
            chain_name: asked.chain.clone(),
            failover: asked.failover,
            stream: Some(streaming),
            ..RequestMeta::new(Source::Gateway)
        };
        let (request_id, stream, progress) = engine.send_watched(request, meta);
        let reply = Reply {
            protocol,
            request_id,
            model: options.model.clone(),
            include_usage: options.include_usage,
            inbound,
            progress,
            // With failover off the request has the first target alone.
            targets: (engine.targets().iter())
                .take(if asked.failover { usize::MAX } else { 1 })
                .map(|t| t.provider.name().to_string())
                .collect(),
        };
        match (streaming, route.mode) {
            (false, _) => reply.whole(stream).await,
            (true, crate::config::RouteMode::Buffered) => reply.buffered(stream).await,
            (true, crate::config::RouteMode::Live) => reply.live(stream).await,
        }
    }

    /// The request in a body of `protocol`, with the body itself as the passthrough original, what
    /// the client asked of the reply, and (for a Responses client) what its reply echoes; `Err`:
    /// the client's 400.
    fn parse(
        &self,
        protocol: Protocol,
        headers: &HeaderMap,
        body: Bytes,
        from_path: Option<(String, bool)>,
    ) -> Result<Parsed, Response> {
        let mut inbound = None;
        let parsed = match protocol {
            Protocol::Gemini => {
                let (model, stream) = from_path.unwrap_or_default();
                super::gemini::parse_request(&body, &model, stream)
            }
            Protocol::Openai | Protocol::Azure => wire::parse_openai_request(&body),
            Protocol::Anthropic => wire::parse_anthropic_request(&body),
            Protocol::OpenaiResponses => {
                responses::parse_request(&body).map(|(request, options, asked)| {
                    inbound = Some(Arc::new(asked));
                    (request, options)
                })
            }
            Protocol::Bedrock => {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                crate::gateway::bedrock::parse_request(
                    &body,
                    header(crate::gateway::bedrock::MODEL_HEADER).unwrap_or_default(),
                    header(crate::gateway::bedrock::STREAM_HEADER) == Some("true"),
                )
            }
        };
        let (mut request, options, bound) = match parsed {
            Ok((request, options)) => (request, options, false),
            // Only a target of the client's protocol can take it: sent to those alone, as is.
            Err(e) if e.cannot_cross => match self.bound(protocol, &body) {
                Some((request, options)) => (request, options, true),
                None => return Err(json_response(e.status, &e.to_json(protocol), None)),
            },
            Err(e) => return Err(json_response(e.status, &e.to_json(protocol), None)),
        };
        // A target of the client's protocol gets the body as sent (a passthrough).
        request.original = Some(Arc::new(Original {
            protocol,
            body,
            headers: forwarded(protocol, headers),
            bound,
        }));
        Ok((request, options, inbound))
    }

    /// The engine a request goes to: its route's, or that of the chain it names (a 400 in the
    /// client's protocol when it names none there is, or one that cannot be used here).
    fn engine_asked<'a>(
        &'a self,
        protocol: Protocol,
        route: &'a Route,
        asked: &Asked,
        streaming: bool,
    ) -> Result<&'a FailoverEngine, Response> {
        let Some(name) = &asked.chain else {
            return Ok(route.engine(streaming));
        };
        match self.routes.chain(name) {
            Ok(engines) => Ok(engines.engine(streaming, route.mode)),
            Err(ChainRefused::Unknown(known)) => Err(bad_header(
                protocol,
                per_request::CHAIN,
                &per_request::unknown_chain(name, &known),
            )),
            Err(ChainRefused::Unusable(why)) => Err(bad_header(
                protocol,
                per_request::CHAIN,
                &format!(
                    "{}: chain `{name}` cannot be used here: {why}",
                    per_request::CHAIN
                ),
            )),
        }
    }

    /// A request that only a target of `protocol` can take (see [`wire::WireError::cannot_cross`]),
    /// when its route has one: what the engine needs of it, read from the body (the model, the
    /// output limit, whether it streams); `None` when no target of its route could take it.
    fn bound(&self, protocol: Protocol, body: &[u8]) -> Option<(Request, wire::InboundOptions)> {
        let fields = crate::json::Fields::parse(body).ok()?;
        let model = fields.value("model")?.as_str()?.to_string();
        let route = self.routes.get(&model)?;
        route
            .engine(false)
            .targets()
            .iter()
            .any(|t| t.provider.protocol() == Some(protocol))
            .then_some(())?;
        let number = |key: &str| fields.value(key).and_then(|v| v.as_u64());
        let max_tokens = ["max_output_tokens", "max_completion_tokens", "max_tokens"]
            .into_iter()
            .find_map(number)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(wire::DEFAULT_MAX_TOKENS);
        let stream = fields.value("stream").and_then(|v| v.as_bool()) == Some(true);
        // What the console shows of it: the last thing the user said.
        let messages = last_user_said(&fields).map_or_else(Vec::new, |t| vec![Message::user(t)]);
        let request = Request {
            max_tokens,
            messages: Arc::new(messages),
            ..Request::default()
        };
        let options = wire::InboundOptions {
            stream,
            include_usage: true,
            model,
        };
        Some((request, options))
    }

    /// With a token, `/v1` wants it too: as the API key (`x-api-key` or a bearer token), or in
    /// `x-breakerbox-token` (the way for passthrough routes, whose API key goes upstream).
    fn v1_authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let google_key = (headers.get(protocol::gemini::KEY_HEADER)).and_then(|v| v.to_str().ok());
        // Azure's clients send their key as `api-key`.
        let azure_key =
            (headers.get(protocol::azure::API_KEY_HEADER)).and_then(|v| v.to_str().ok());
        [
            auth::presented_token(headers),
            api_key,
            google_key,
            azure_key,
        ]
        .into_iter()
        .flatten()
        .any(|presented| auth::token_matches(token, presented.trim()))
    }

    /// The client's own API key for a passthrough route (never the gateway's token).
    fn client_key(&self, protocol: Protocol, headers: &HeaderMap) -> Option<ApiKey> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let bearer = header("authorization").and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
        let key = match protocol {
            Protocol::Anthropic => header("x-api-key").or(bearer),
            Protocol::Openai | Protocol::OpenaiResponses | Protocol::Bedrock => bearer,
            Protocol::Gemini => header(protocol::gemini::KEY_HEADER).or(bearer),
            Protocol::Azure => header(protocol::azure::API_KEY_HEADER).or(bearer),
        }?
        .trim();
        let is_token = self
            .token
            .as_deref()
            .is_some_and(|t| auth::token_matches(t, key));
        (!key.is_empty() && !is_token).then(|| ApiKey::new(key))
    }
}

/// A request as the gateway read it: for the engine, what the client asked of the reply, and (for
/// a Responses client) what its reply echoes.
type Parsed = (
    Request,
    wire::InboundOptions,
    Option<Arc<responses::Inbound>>,
);

/// Why a request body could not be read.
struct Unread {
    status: u16,
    class: ErrorClass,
    message: String,
}

/// A request body, whole: at most `limit` bytes, within `within` of the end of the headers.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    within: Duration,
) -> Result<Bytes, Unread> {
    let too_large = || Unread {
        status: 413,
        class: ErrorClass::TooLarge,
        message: format!("the request body is larger than the gateway's limit of {limit} bytes"),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(within, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(body)) => Ok(body),
        Err(_) => Err(Unread {
            status: 408,
            class: ErrorClass::Timeout,
            message: format!(
                "the request body did not arrive within {within:?} ([gateway] body_timeout)"
            ),
        }),
        Ok(Err(e)) => {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                Err(too_large())
            } else {
                Err(Unread {
                    status: 400,
                    class: ErrorClass::BadRequest,
                    message: format!("the request body could not be read: {inner}"),
                })
            }
        }
    }
}

/// The client's headers that a target of its protocol gets too (its API version, its betas); never
/// the gateway's own (`x-breakerbox-…`).
fn forwarded(protocol: Protocol, headers: &HeaderMap) -> Vec<(String, String)> {
    protocol
        .forwarded_headers()
        .iter()
        .filter(|name| !name.starts_with(per_request::PREFIX))
        .flat_map(|name| {
            headers
                .get_all(*name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| (name.to_string(), v.to_string()))
        })
        .collect()
}

/// The text of a body's last user message (`input` or `messages`, read item by item from the
/// end), for a request that is passed on without being translated.
fn last_user_said(fields: &crate::json::Fields<'_>) -> Option<String> {
    let raw = fields.raw("input").or_else(|| fields.raw("messages"))?;
    if crate::json::kind(raw) == "a string" {
        return crate::json::parse(raw).ok()?.as_str().map(str::to_string);
    }
    let text = |content: &Value| -> Option<String> {
        match content {
            Value::String(s) => Some(s.clone()),
            Value::Array(parts) => {
                let texts: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                (!texts.is_empty()).then(|| texts.join("\n"))
            }
            _ => None,
        }
    };
    crate::json::items(raw).ok()?.iter().rev().find_map(|item| {
        let item = crate::json::parse(item).ok()?;
        (item.get("role").and_then(Value::as_str) == Some("user"))
            .then(|| item.get("content").and_then(text))
            .flatten()
    })
}

/// The text of the last user message, for the console's request list.
fn last_user_text(request: &Request) -> Option<String> {
    let message = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)?;
    let text: Vec<&str> = message
        .content
        .iter()
        .filter_map(|c| match c {
            Content::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

/// One reply on its way back to the client.
struct Reply {
    protocol: Protocol,
    request_id: String,
    /// The model name the client asked for; used until the answering model is known.
    model: String,
    include_usage: bool,
    /// For a Responses API client: what its response object echoes, and its tools' kinds.
    inbound: Option<Arc<responses::Inbound>>,
    /// Who the engine's events come from, for the `x-breakerbox-` response headers.
    progress: Progress,
    /// The chain's targets as this request may use them; the first is its primary.
    targets: Vec<String>,
}

/// Text, thinking and tool calls: what a client can see and never unsee.
fn is_content(event: &StreamEvent) -> bool {
    matches!(
        event,
        StreamEvent::TextDelta { .. }
            | StreamEvent::RefusalDelta { .. }
            | StreamEvent::ThinkingDelta { .. }
            | StreamEvent::ToolCallStart { .. }
            | StreamEvent::ToolCallDelta { .. }
    )
}

impl Reply {
    /// `"stream": false`: one JSON body once the reply is complete; the upstream's own, whole,
    /// when it spoke the client's protocol.
    async fn whole(self, stream: ProviderStream) -> Response {
        match complete(stream).await {
            Ok(events) => {
                let answered = self.answered(&events);
                let own = passthrough::wire_events(&events).and_then(|wire| match self.protocol {
                    Protocol::Anthropic => passthrough::anthropic_message(&wire),
                    Protocol::Openai | Protocol::Azure => passthrough::openai_completion(&wire),
                    Protocol::OpenaiResponses => passthrough::responses_object(&wire),
                    Protocol::Gemini => super::gemini::whole_from_wire(&wire),
                    Protocol::Bedrock => None,
                });
                let body = own.unwrap_or_else(|| match self.protocol {
                    Protocol::Anthropic => wire::anthropic_message(&self.model, &events),
                    Protocol::Openai | Protocol::Azure => {
                        wire::openai_completion(&self.model, &events)
                    }
                    Protocol::OpenaiResponses => {
                        responses::whole_response(&self.model, &events, self.inbound())
                    }
                    Protocol::Gemini => super::gemini::whole_response(&self.model, &events),
                    Protocol::Bedrock => crate::gateway::bedrock::whole_response(&events),
                });
                self.answer(json_response(200, &body, None), &answered)
            }
            Err(err) => self.error(&err),
        }
    }

    /// A streaming client of a buffered route: the whole reply as one burst of SSE frames. The
    /// reply is complete before a frame goes out, so a spliced one is named in its first frames
    /// by the model that finished it, as its headers are.
    async fn buffered(self, stream: ProviderStream) -> Response {
        match complete(stream).await {
            Ok(events) => {
                let answered = self.answered(&events);
                let events = per_request::named_by_finisher(events);
                let mut encoder = self.encoder();
                let mut text = String::new();
                for event in &events {
                    for frame in encoder.event(event) {
                        text.push_str(&frame);
                    }
                }
                for frame in encoder.finish() {
                    text.push_str(&frame);
                }
                self.answer(self.sse(Body::from(text)), &answered)
            }
            Err(err) => self.error(&err),
        }
    }

    /// A streaming client of a live route: hold back until the first content, then forward each
    /// event as it comes. After that a failure can only end the stream with an in-stream error.
    /// The headers say who answered as of the first content; a continuation by another target
    /// later is told in a comment before the last event ([`per_request::Trailer`]).
    async fn live(self, mut stream: ProviderStream) -> Response {
        let mut held = Vec::new();
        loop {
            match stream.next().await {
                Some(Ok(StreamEvent::Rewind { .. })) => held.clear(),
                Some(Ok(event)) => {
                    let go = is_content(&event) || matches!(event, StreamEvent::Done { .. });
                    held.push(event);
                    if go {
                        break;
                    }
                }
                Some(Err(err)) => return self.error(&err),
                None => return self.error(&wire::upstream_cut()),
            }
        }
        let answered = self.answered(&held);
        let trailer = per_request::Trailer::new(&answered, self.progress.clone(), self.primary());
        let mut encoder = self.encoder();
        let first: String = held.iter().flat_map(|e| encoder.event(e)).collect();
        let done = matches!(held.last(), Some(StreamEvent::Done { .. }));
        let rest = futures::stream::unfold(
            (stream, encoder, trailer, done),
            |(mut stream, mut encoder, mut trailer, mut finished)| async move {
                if finished {
                    return None;
                }
                // Wait for one event, then take whatever else is already there, so a burst
                // goes out in one write instead of one per token.
                let mut out = String::new();
                let mut next = stream.next().await;
                loop {
                    let (frames, end) = encode_live(encoder.as_mut(), next, &mut trailer);
                    for frame in frames {
                        out.push_str(&frame);
                    }
                    finished = end;
                    if finished || out.len() >= WRITE_BATCH {
                        break;
                    }
                    match stream.next().now_or_never() {
                        Some(item) => next = item,
                        None => break,
                    }
                }
                Some((
                    Ok::<_, Infallible>(Bytes::from(out)),
                    (stream, encoder, trailer, finished),
                ))
            },
        );
        let body = futures::stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) })
            .chain(rest)
            .filter(|chunk| {
                let keep = chunk.as_ref().is_ok_and(|b| !b.is_empty());
                async move { keep }
            });
        self.answer(self.sse(Body::from_stream(body)), &answered)
    }

    /// Who answered a reply made of `events`, as the engine says now.
    fn answered(&self, events: &[StreamEvent]) -> Answered {
        let model = per_request::answering_model(events);
        Answered::reply(&self.progress.now(), model, self.primary())
    }

    /// The chain's first target.
    fn primary(&self) -> &str {
        self.targets.first().map_or("", String::as_str)
    }

    fn encoder(&self) -> Box<dyn Encode> {
        match self.protocol {
            Protocol::Anthropic => Box::new(AnthropicEncoder::new(self.model.clone())),
            Protocol::Openai | Protocol::Azure => {
                Box::new(OpenAiEncoder::new(self.model.clone(), self.include_usage))
            }
            Protocol::OpenaiResponses => {
                Box::new(ResponsesEncoder::new(self.model.clone(), self.inbound()))
            }
            Protocol::Gemini => Box::new(super::gemini::GeminiEncoder::new(self.model.clone())),
            Protocol::Bedrock => Box::<crate::gateway::bedrock::ConverseEncoder>::default(),
        }
    }

    fn inbound(&self) -> Arc<responses::Inbound> {
        self.inbound.clone().unwrap_or_default()
    }

    fn sse(&self, body: Body) -> Response {
        // A Converse client reads AWS event-stream messages: the frames are reframed on the way.
        let (body, content_type) = match self.protocol {
            Protocol::Bedrock => (
                Body::from_stream(crate::gateway::bedrock::reframe(body.into_data_stream())),
                protocol::bedrock::EVENT_STREAM_CONTENT_TYPE,
            ),
            _ => (body, "text/event-stream; charset=utf-8"),
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    fn error(&self, err: &ProviderError) -> Response {
        let (status, body, retry_after) = wire::error_response(self.protocol, err);
        let answered = Answered::error(&self.progress.now(), err, &self.targets);
        self.answer(
            json_response(status, &body, retry_after.as_deref()),
            &answered,
        )
    }

    /// The response with the gateway's request id and who answered.
    fn answer(&self, mut response: Response, answered: &Answered) -> Response {
        answered.insert(response.headers_mut());
        self.with_ids(response)
    }

    /// The gateway's request id, under the names each protocol's clients read.
    fn with_ids(&self, mut response: Response) -> Response {
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            let headers = response.headers_mut();
            headers.insert("x-breakerbox-request-id", value.clone());
            headers.insert(protocol::anthropic::REQUEST_ID_HEADER, value.clone());
            headers.insert(protocol::chat::REQUEST_ID_HEADER, value);
        }
        response
    }
}

/// The frames for one item of a live stream, and whether the client's stream is over. A reply
/// continued by another target says so before its end (`trailer`).
fn encode_live(
    encoder: &mut dyn Encode,
    item: Option<Result<StreamEvent, ProviderError>>,
    trailer: &mut per_request::Trailer,
) -> (Vec<String>, bool) {
    match item {
        Some(Ok(StreamEvent::Rewind { .. })) => {
            // The engine never withdraws content on a live route; if it ever did, the client
            // must not get a splice that looks whole.
            let err = ProviderError::new(
                "gateway",
                ErrorClass::StreamCut,
                Phase::MidStream,
                "the upstream reply was withdrawn after part of it was sent",
            );
            (encoder.error(&err), true)
        }
        Some(Ok(event)) => {
            trailer.see(&event);
            let done = matches!(event, StreamEvent::Done { .. });
            let mut frames: Vec<String> = if done {
                trailer.changed().into_iter().collect()
            } else {
                Vec::new()
            };
            frames.extend(encoder.event(&event));
            (frames, done)
        }
        Some(Err(err)) => (encoder.error(&err), true),
        None => (encoder.finish(), true),
    }
}

/// Read a whole reply: the events after the last rewind, ending in `Done`; a stream that ends
/// without `Done` was cut, and is an error, never a short success.
async fn complete(mut stream: ProviderStream) -> Result<Vec<StreamEvent>, ProviderError> {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item? {
            StreamEvent::Rewind { .. } => events.clear(),
            event => {
                let done = matches!(event, StreamEvent::Done { .. });
                events.push(event);
                if done {
                    return Ok(events);
                }
            }
        }
    }
    Err(wire::upstream_cut())
}

fn json_response(status: u16, body: &Value, retry_after: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A 400 for one of the gateway's own request headers, in the client's protocol (naming the header
/// as OpenAI's `param`).
fn bad_header(protocol: Protocol, header: &str, message: &str) -> Response {
    let err = ProviderError::new("gateway", ErrorClass::BadRequest, Phase::Connect, message);
    let (status, mut body, _) = wire::error_response(protocol, &err);
    if protocol != Protocol::Anthropic {
        body["error"]["param"] = json!(header);
    }
    json_response(status, &body, None)
}

/// An error of the gateway's own (not a provider's), in the client's protocol.
fn gateway_error(protocol: Protocol, class: ErrorClass, message: &str) -> Response {
    let err = ProviderError::new("gateway", class, Phase::Connect, message);
    let (status, body, _) = wire::error_response(protocol, &err);
    json_response(status, &body, None)
}

/// `GET /v1/models`: the routes, as the client's protocol lists models. Behind the token, like the
/// rest of `/v1`.
async fn models(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let anthropic = headers.contains_key("anthropic-version");
    let names = gw.routes.listed();
    let body = if anthropic {
        let data: Vec<Value> = names
            .iter()
            .map(|n| {
                json!({"type": "model", "id": n, "display_name": n,
                       "created_at": "1970-01-01T00:00:00Z"})
            })
            .collect();
        json!({"data": data, "has_more": false,
               "first_id": names.first(), "last_id": names.last()})
    } else {
        let data: Vec<Value> = names
            .iter()
            .map(|n| json!({"id": n, "object": "model", "created": 0, "owned_by": "breakerbox"}))
            .collect();
        json!({"object": "list", "data": data})
    };
    json_response(200, &body, None)
}

/// A known path with the wrong method: the error in the protocol of the path.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let message = format!("{method} is not allowed on {path}");
    let (status, body) = match path {
        "/v1/messages" => (
            405,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        ),
        p if p.starts_with("/v1/") => (
            405,
            json!({"error": {"message": message, "type": "invalid_request_error",
                             "param": Value::Null, "code": "method_not_allowed"}}),
        ),
        _ => (405, json!({"ok": false, "error": message})),
    };
    json_response(status, &body, None)
}

/// An unknown path: a 404 in the error shape of the caller's protocol (an Anthropic client says so
/// with `anthropic-version`, or by its paths; other `/v1/` calls get OpenAI's), so its SDK reports
/// it as what it is rather than as an unreadable body.
async fn not_found(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let message = format!(
        "no such endpoint: {method} {path}; the gateway serves /v1/chat/completions, /v1/messages, \
         /v1/responses, /v1/models, /events, /control, /metrics and /healthz"
    );
    let anthropic = headers.contains_key("anthropic-version")
        || path.starts_with("/v1/messages")
        || path.starts_with("/v1/complete");
    let body = if anthropic {
        json!({"type": "error", "error": {"type": "not_found_error", "message": message}})
    } else if path.starts_with("/v1/") {
        json!({"error": {"message": message, "type": "invalid_request_error",
                         "param": Value::Null, "code": "unknown_url"}})
    } else {
        // The shape both clients read.
        json!({"type": "error", "error": {"type": "not_found_error", "message": message}})
    };
    json_response(404, &body, None)
}

// ---------------------------------------------------------------------------------------------
// Watching and control
// ---------------------------------------------------------------------------------------------

impl Gateway {
    /// Publish `request_rejected` for a request refused with `response`.
    fn rejected(
        &self,
        protocol: Protocol,
        reason: RejectReason,
        response: &Response,
        message: &str,
    ) {
        self.bus.publish(EventKind::RequestRejected {
            reason,
            status: response.status().as_u16(),
            protocol,
            message: crate::text::cut(message, 512).to_string(),
        });
    }

    /// Show the live OTLP exporter's counts in `/metrics` (`breakerbox_otlp_*`).
    pub fn report_otlp(&self, stats: Arc<crate::telemetry::OtlpStats>) {
        let _ = self.otlp.set(stats);
    }

    /// `/events` and `/control` demand the token when there is one.
    fn operator_authorized(&self, headers: &HeaderMap) -> bool {
        match &self.token {
            None => true,
            Some(token) => {
                auth::presented_token(headers).is_some_and(|p| auth::token_matches(token, p))
            }
        }
    }
}

fn unauthorized() -> Response {
    json_response(
        401,
        &json!({"ok": false, "error": "the token is missing or does not match: send `Authorization: Bearer TOKEN`"}),
        None,
    )
}

async fn events(State(gw): State<Arc<Gateway>>) -> Response {
    let rx = gw.history.stream(gw.stop.clone());
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), rx))
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn control(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(body, &headers, CONTROL_BODY_LIMIT, gw.limits.body_timeout.0).await {
        Ok(body) => body,
        Err(unread) => {
            return json_response(
                unread.status,
                &json!({"ok": false, "error": unread.message}),
                None,
            );
        }
    };
    let bad = |error: String| json_response(400, &json!({"ok": false, "error": error}), None);
    let command: Command = match serde_json::from_slice(&body) {
        Ok(command) => command,
        Err(e) => return bad(format!("{e}; {}", command::USAGE)),
    };
    let Some(controller) = &gw.control else {
        return bad("this gateway has no routes to control".to_string());
    };
    match controller.apply(command) {
        Ok(message) => json_response(200, &json!({"ok": true, "message": message}), None),
        Err(error) => bad(error),
    }
}

async fn metrics_text(State(gw): State<Arc<Gateway>>) -> Response {
    let mut text = gw
        .metrics
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .render();
    let cap = u64::from(gw.limits.max_connections);
    let open = cap.saturating_sub(gw.connections.available_permits() as u64);
    text.push_str(&metrics::render_connections(
        open,
        cap,
        gw.refused.load(Ordering::Relaxed),
    ));
    if let Some(stats) = gw.otlp.get() {
        use crate::telemetry::OtlpStats;
        text.push_str(&metrics::render_otlp(metrics::OtlpCounts {
            exported: OtlpStats::get(&stats.exported),
            dropped: OtlpStats::get(&stats.dropped),
            failures: OtlpStats::get(&stats.failures),
            events_missed: OtlpStats::get(&stats.events_missed),
        }));
    }
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

async fn healthz(State(gw): State<Arc<Gateway>>) -> Response {
    let routes: Vec<Value> = gw
        .routes
        .iter()
        .map(|r: &Route| {
            json!({"model": r.model, "chain": r.chain, "targets": r.targets(),
                   "mode": r.mode.as_str(), "passthrough": r.passthrough})
        })
        .collect();
    json_response(
        200,
        &json!({"status": "ok", "mode": gw.mode.as_str(), "simulated": gw.simulated,
                "providers": gw.providers, "routes": routes}),
        None,
    )
}
