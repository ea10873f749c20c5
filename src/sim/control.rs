//! The control endpoint on the shared port, for the console and for people with curl:
//! `GET /_sim/providers`, `PUT /_sim/providers/{name}/fault`, `GET /_sim/log?limit=N`,
//! `GET /_sim/healthz`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use super::fault::Fault;
use super::state::{ProviderStatus, RequestRecord, SimState};

/// `GET /_sim/log` shows this many records unless asked otherwise.
const DEFAULT_LOG_LIMIT: usize = 100;

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub(crate) async fn providers(State(state): State<Arc<SimState>>) -> Json<Vec<ProviderStatus>> {
    Json(state.providers.iter().map(|p| p.status()).collect())
}

#[derive(Deserialize)]
struct FaultBody {
    fault: String,
}

/// The body is the fault string itself, or JSON `{"fault": "…"}`.
pub(crate) async fn set_fault(
    State(state): State<Arc<SimState>>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let provider = match state.provider(&name) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("{e} (there are: {})", state.names()),
            );
        }
    };
    let text = body.trim();
    let text = if text.starts_with('{') {
        match serde_json::from_str::<FaultBody>(text) {
            Ok(b) => b.fault,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the body is neither a fault string nor JSON {{\"fault\": \"KIND[:PARAMS]\"}}: {e}"
                    ),
                );
            }
        }
    } else {
        text.to_string()
    };
    match text.parse::<Fault>() {
        Ok(fault) => {
            provider.set_fault(fault);
            Json(provider.status()).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    limit: Option<usize>,
}

pub(crate) async fn log(
    State(state): State<Arc<SimState>>,
    Query(query): Query<LogQuery>,
) -> Json<Vec<RequestRecord>> {
    Json(state.log.recent(query.limit.unwrap_or(DEFAULT_LOG_LIMIT)))
}

pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}
