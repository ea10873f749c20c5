//! Azure OpenAI's paths on the gateway, so that an `openai.AzureOpenAI` client can take
//! breakerbox as its `azure_endpoint`: `POST /openai/deployments/{deployment}/chat/completions`
//! (the deployment's name is the model that picks the route; `api-version` is accepted and not
//! needed) and `POST /openai/v1/chat/completions` (the body's `model` picks it). Both speak Chat
//! Completions in Azure's dialect: Azure's error bodies, and an Azure target's stream passed through
//! as it came (its filter results included). The client's `api-key` is the gateway's token where
//! one is required, and its own key on a passthrough route.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::sync::Arc;

use super::server::Gateway;
use crate::protocol::Protocol;

pub(super) async fn deployment_chat(
    State(gw): State<Arc<Gateway>>,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.proxy_as(Protocol::Azure, &headers, body, Some(&deployment))
        .await
}

pub(super) async fn v1_chat(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    gw.proxy_as(Protocol::Azure, &headers, body, None).await
}
