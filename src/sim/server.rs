//! Listening and connections. Connections are driven here with hyper (not `axum::serve`) so that a
//! request can reset or close its own connection, and so each provider's direct port can stop
//! listening (for `connect_refused`) and listen again on the same port.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post, put};
use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::azure;
use super::control;
use super::serve::{answer, count_tokens, not_found};
use super::state::{ProviderState, SimState};
use super::wire::wire;
use crate::provider::Protocol;

/// How long open connections may finish their response at shutdown before they are dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Request bodies up to this size are read (long prompts are the point of `context_length`).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Lets a request end its own connection.
#[derive(Default)]
pub(crate) struct ConnControl {
    end: CancellationToken,
    reset: AtomicBool,
}

impl ConnControl {
    /// Drop the connection with a TCP RST.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Relaxed);
        self.end.cancel();
    }

    /// Drop the connection with a plain close.
    pub fn close(&self) {
        self.end.cancel();
    }
}

/// Serve one connection until it ends, a request ends it, or the simulator stops.
async fn serve_connection(stream: TcpStream, router: Router, stop: CancellationToken) {
    // Tokens go out one small write at a time; don't let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let control = Arc::new(ConnControl::default());
    let service = {
        let control = Arc::clone(&control);
        let router = TowerToHyperService::new(router);
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(Arc::clone(&control));
            router.call(request)
        })
    };
    // hyper's default 30 s header timeout also runs while a keep-alive connection waits idle
    // for its next request; closing those would race with clients' pools, so idle connections
    // stay open until the client closes them.
    let mut conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = &mut conn => {
            if let Err(e) = result {
                tracing::debug!("sim connection ended: {e}");
            }
        }
        () = control.end.cancelled() => {
            if control.reset.load(Ordering::Relaxed) {
                // SO_LINGER 0 makes the close below send RST instead of FIN.
                let stream = conn.into_parts().io.into_inner();
                if let Err(e) = stream.set_zero_linger() {
                    tracing::warn!("cannot set SO_LINGER for a simulated reset: {e}");
                }
            }
        }
        () = stop.cancelled() => {
            std::pin::Pin::new(&mut conn).graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut conn).await;
        }
    }
}

/// Accept connections forever.
async fn accept_connections(
    listener: &TcpListener,
    router: &Router,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tasks.spawn(serve_connection(stream, router.clone(), stop.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("sim accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The shared port: every provider under `/{name}`, and the control endpoint.
pub(crate) async fn serve_shared(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = accept_connections(&listener, &router, &stop, &tasks) => {}
    }
}

/// A provider's own port, closed while it refuses connections and reopened on the same address.
pub(crate) async fn serve_direct(
    provider: Arc<ProviderState>,
    listener: TcpListener,
    addr: SocketAddr,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let router = direct_router(Arc::clone(&provider));
    let mut faults = provider.subscribe();
    let mut listener = Some(listener);
    let name = &provider.spec.name;
    loop {
        let (refuse, mut wake_in) = provider.refuses_connections();
        if refuse {
            if listener.take().is_some() {
                tracing::info!("sim {name}: direct port {addr} closed (connect_refused)");
            }
        } else if listener.is_none() {
            match TcpListener::bind(addr).await {
                Ok(l) => {
                    tracing::info!("sim {name}: direct port {addr} listening again");
                    listener = Some(l);
                }
                Err(e) => {
                    tracing::warn!("sim {name}: cannot listen on {addr} again: {e}; retrying");
                    wake_in = Some(Duration::from_millis(100));
                }
            }
        }
        provider
            .direct_listening
            .store(listener.is_some(), Ordering::Relaxed);
        let wake = async {
            match wake_in {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let accept = async {
            match &listener {
                Some(l) => accept_connections(l, &router, &stop, &tasks).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            changed = faults.changed() => if changed.is_err() { return },
            () = wake => {}
            () = accept => {}
        }
    }
}

pub(crate) fn shared_router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/_sim/providers", get(control::providers))
        .route("/_sim/providers/{name}/fault", put(control::set_fault))
        .route("/_sim/log", get(control::log))
        .route("/_sim/healthz", get(control::healthz))
        .route("/{name}/v1/messages", post(shared_messages))
        .route(
            "/{name}/v1/messages/count_tokens",
            post(shared_count_tokens),
        )
        .route("/{name}/v1/chat/completions", post(shared_chat))
        .route("/{name}/v1/responses", post(shared_responses))
        // Gemini's two API versions (its official client takes `v1` unless told `v1beta`), and
        // Vertex AI's (`v1`, and `v1beta1`, its client's default).
        .route("/{name}/v1beta/models/{target}", post(super::gemini::shared))
        .route("/{name}/v1/models/{target}", post(super::gemini::shared))
        .route(
            "/{name}/v1/projects/{project}/locations/{location}/publishers/google/models/{target}",
            post(super::gemini::shared_vertex),
        )
        .route(
            "/{name}/v1beta1/projects/{project}/locations/{location}/publishers/google/models/{target}",
            post(super::gemini::shared_vertex),
        )
        .route("/{name}/model/{model}/{operation}", post(shared_converse))
        .route(
            "/{name}/openai/deployments/{deployment}/chat/completions",
            post(shared_azure_deployment),
        )
        .route("/{name}/openai/v1/chat/completions", post(shared_azure_v1))
        .fallback(|| async { not_found("no such path on the simulator".to_string()) })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

fn direct_router(provider: Arc<ProviderState>) -> Router {
    if provider.spec.protocol == Protocol::Azure {
        return direct_azure_router(provider);
    }
    let path = wire(provider.spec.protocol).path();
    if provider.spec.protocol == Protocol::Gemini {
        return Router::new()
            .route(path, post(super::gemini::direct))
            .route("/v1/models/{target}", post(super::gemini::direct))
            .fallback(move || async move { not_found(format!("this port serves POST {path}")) })
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(provider);
    }
    if provider.spec.protocol == Protocol::Bedrock {
        return Router::new()
            .route(
                "/model/{model}/{operation}",
                post(
                    |State(p): State<Arc<ProviderState>>,
                     Path((model, operation)): Path<(String, String)>,
                     Extension(conn): Extension<Arc<ConnControl>>,
                     headers: axum::http::HeaderMap,
                     body: Bytes| {
                        super::serve::converse(p, model, operation, headers, conn, body)
                    },
                ),
            )
            .fallback(|| async {
                not_found("this port serves POST /model/{modelId}/converse-stream".into())
            })
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(provider);
    }
    let mut router = Router::new().route(
        path,
        post(
            |State(p): State<Arc<ProviderState>>,
             Extension(conn): Extension<Arc<ConnControl>>,
             body: Bytes| answer(p, conn, body),
        ),
    );
    if provider.spec.protocol == Protocol::Anthropic {
        router = router.route(
            "/v1/messages/count_tokens",
            post(|State(p): State<Arc<ProviderState>>, body: Bytes| count_tokens(p, body)),
        );
    }
    router
        .fallback(move || async move { not_found(format!("this port serves POST {path}")) })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(provider)
}

async fn shared_messages(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    Extension(conn): Extension<Arc<ConnControl>>,
    body: Bytes,
) -> Response {
    shared(&state, &name, Protocol::Anthropic, conn, body).await
}

async fn shared_count_tokens(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    match state.provider(&name) {
        Ok(p) if p.spec.protocol == Protocol::Anthropic => count_tokens(Arc::clone(p), body).await,
        Ok(_) => not_found(format!(
            "`{name}` does not count tokens (only Anthropic does)"
        )),
        Err(e) => not_found(format!("{e} (there are: {})", state.names())),
    }
}

async fn shared_chat(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    Extension(conn): Extension<Arc<ConnControl>>,
    body: Bytes,
) -> Response {
    shared(&state, &name, Protocol::Openai, conn, body).await
}

async fn shared_responses(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    Extension(conn): Extension<Arc<ConnControl>>,
    body: Bytes,
) -> Response {
    shared(&state, &name, Protocol::OpenaiResponses, conn, body).await
}

async fn shared_converse(
    State(state): State<Arc<SimState>>,
    Path((name, model, operation)): Path<(String, String, String)>,
    Extension(conn): Extension<Arc<ConnControl>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    match state.provider(&name) {
        Ok(p) if p.spec.protocol == Protocol::Bedrock => {
            super::serve::converse(Arc::clone(p), model, operation, headers, conn, body).await
        }
        Ok(p) => not_found(format!(
            "`{name}` speaks the {} protocol: POST /{name}{}",
            p.spec.protocol,
            wire(p.spec.protocol).path()
        )),
        Err(e) => not_found(format!("{e} (there are: {})", state.names())),
    }
}

async fn shared(
    state: &SimState,
    name: &str,
    path_protocol: Protocol,
    conn: Arc<ConnControl>,
    body: Bytes,
) -> Response {
    let provider = match state.provider(name) {
        Ok(p) => Arc::clone(p),
        Err(e) => return not_found(format!("{e} (there are: {})", state.names())),
    };
    let protocol = provider.spec.protocol;
    if protocol != path_protocol {
        return not_found(format!(
            "`{name}` speaks the {protocol} protocol: POST /{name}{}",
            wire(protocol).path()
        ));
    }
    answer(provider, conn, body).await
}

/// The `api-version` of an Azure request's query.
#[derive(serde::Deserialize)]
pub(crate) struct AzureQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// An Azure provider's own port: its two paths.
fn direct_azure_router(provider: Arc<ProviderState>) -> Router {
    Router::new()
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(
                |State(p): State<Arc<ProviderState>>,
                 Extension(conn): Extension<Arc<ConnControl>>,
                 Query(query): Query<AzureQuery>,
                 headers: HeaderMap,
                 body: Bytes| {
                    azure::chat(
                        p,
                        conn,
                        azure::Path::Deployment,
                        query.api_version,
                        headers,
                        body,
                    )
                },
            ),
        )
        .route(
            "/openai/v1/chat/completions",
            post(
                |State(p): State<Arc<ProviderState>>,
                 Extension(conn): Extension<Arc<ConnControl>>,
                 headers: HeaderMap,
                 body: Bytes| {
                    azure::chat(p, conn, azure::Path::V1, None, headers, body)
                },
            ),
        )
        .fallback(|| async {
            not_found(
                "this port serves POST /openai/deployments/{deployment}/chat/completions and \
                 /openai/v1/chat/completions"
                    .to_string(),
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(provider)
}

async fn shared_azure_deployment(
    State(state): State<Arc<SimState>>,
    Path((name, _deployment)): Path<(String, String)>,
    Query(query): Query<AzureQuery>,
    Extension(conn): Extension<Arc<ConnControl>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = azure::Path::Deployment;
    shared_azure(&state, &name, path, query.api_version, conn, headers, body).await
}

async fn shared_azure_v1(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    Extension(conn): Extension<Arc<ConnControl>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared_azure(&state, &name, azure::Path::V1, None, conn, headers, body).await
}

async fn shared_azure(
    state: &SimState,
    name: &str,
    path: azure::Path,
    api_version: Option<String>,
    conn: Arc<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = match state.provider(name) {
        Ok(p) => Arc::clone(p),
        Err(e) => return not_found(format!("{e} (there are: {})", state.names())),
    };
    if provider.spec.protocol != Protocol::Azure {
        let protocol = provider.spec.protocol;
        return not_found(format!(
            "`{name}` speaks the {protocol} protocol: POST /{name}{}",
            wire(protocol).path()
        ));
    }
    azure::chat(provider, conn, path, api_version, headers, body).await
}
