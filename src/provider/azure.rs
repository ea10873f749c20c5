//! Azure OpenAI, streaming: Chat Completions at a deployment's path
//! (`{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`) or at the v1 path
//! (`{endpoint}/openai/v1/chat/completions`). The body and the stream are OpenAI's, written and
//! read by [`super::openai`]; what is Azure's — the path, the key header, the error bodies and the
//! retry headers — is in [`crate::protocol::azure`] and the shared transport.

use super::http::{self};
use super::openai::{OpenAiParser, chat_body};
use super::{ApiKey, Protocol, Provider, ProviderConfig, ProviderStream, Request};
use crate::protocol::azure as wire;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, InvalidHeaderValue,
};

/// How the client proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// The resource's key, in the `api-key` header.
    #[default]
    ApiKey,
    /// A Microsoft Entra ID token, in `Authorization: Bearer` (`ad_token_env`).
    EntraToken,
}

impl Auth {
    pub fn as_str(&self) -> &'static str {
        match self {
            Auth::ApiKey => "api-key header",
            Auth::EntraToken => "Entra ID bearer token",
        }
    }
}

/// An Azure provider's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The deployment to call; `None`: the model asked for names it.
    pub deployment: Option<String>,
    /// A date version (`2024-10-21`) for the deployment paths, or `v1` for the v1 path.
    pub api_version: String,
    /// Which credential the configured key is (a caller's own key is always an `api-key`).
    pub auth: Auth,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            deployment: None,
            api_version: wire::DEFAULT_API_VERSION.to_string(),
            auth: Auth::ApiKey,
        }
    }
}

pub struct AzureClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl AzureClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        tracing::debug!(
            provider = %config.name,
            auth = config.azure.auth.as_str(),
            api_version = %config.azure.api_version,
            "azure client"
        );
        AzureClient { config, http }
    }

    /// The deployment a request goes to: the configured one, else the model it asks for.
    fn deployment<'a>(&'a self, request: &'a Request) -> &'a str {
        self.config
            .azure
            .deployment
            .as_deref()
            .unwrap_or_else(|| request.model_or(&self.config.model))
    }

    /// The JSON body: OpenAI's, naming the deployment as its model (the v1 path reads it there;
    /// a deployment's path ignores it). Azure takes `max_completion_tokens`, which its reasoning
    /// models require.
    pub fn request_body(&self, request: &Request) -> String {
        chat_body(
            request,
            Protocol::Azure,
            self.deployment(request),
            "max_completion_tokens",
        )
    }

    /// The path below the endpoint, its query included.
    pub fn path(&self, request: &Request) -> String {
        wire::chat_path(self.deployment(request), &self.config.azure.api_version)
    }

    fn headers(&self, key: &ApiKey) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if key.is_empty() {
            return Ok(headers);
        }
        // The configured credential is what the config says it is; a caller's own (a passthrough
        // route) came as an `api-key`.
        let entra = self.config.azure.auth == Auth::EntraToken && *key == self.config.api_key;
        if entra {
            let bearer = format!("Bearer {}", key.expose());
            headers.insert(AUTHORIZATION, http::secret_header(&bearer)?);
        } else {
            headers.insert(
                HeaderName::from_static(wire::API_KEY_HEADER),
                http::secret_header(key.expose())?,
            );
        }
        Ok(headers)
    }
}

impl Provider for AzureClient {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn default_model(&self) -> &str {
        &self.config.model
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::Azure)
    }
    fn stream(&self, request: Request) -> ProviderStream {
        let body = self.request_body(&request);
        let path = self.path(&request);
        http::send(
            &self.http,
            &self.config,
            Protocol::Azure,
            &request,
            |key| self.headers(key),
            &path,
            body,
            OpenAiParser::default(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client(settings: Settings) -> AzureClient {
        let mut config =
            ProviderConfig::new("azure", Protocol::Azure, "https://r.openai.azure.com");
        config.model = "gpt-4o".into();
        config.api_key = ApiKey::new("k-123");
        config.azure = settings;
        let http = http::client(&config.timeouts).unwrap();
        AzureClient::new(config, http)
    }

    #[test]
    fn the_deployment_defaults_to_the_model_and_v1_needs_no_version() {
        let c = client(Settings::default());
        let request = Request::prompt("hi");
        assert_eq!(
            c.path(&request),
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        let body: serde_json::Value = serde_json::from_str(&c.request_body(&request)).unwrap();
        assert_eq!(body["model"], "gpt-4o");
        assert_eq!(body["max_completion_tokens"], 1024);
        assert_eq!(body["stream_options"]["include_usage"], true);
        let c = client(Settings {
            deployment: Some("prod-4o".into()),
            api_version: "v1".into(),
            auth: Auth::ApiKey,
        });
        assert_eq!(c.path(&request), "/openai/v1/chat/completions");
        let body: serde_json::Value = serde_json::from_str(&c.request_body(&request)).unwrap();
        assert_eq!(body["model"], "prod-4o");
    }

    #[test]
    fn the_key_goes_in_api_key_or_as_a_bearer_token() {
        let c = client(Settings::default());
        let h = c.headers(&c.config.api_key).unwrap();
        assert_eq!(h.get("api-key").unwrap(), "k-123");
        assert!(h.get("api-key").unwrap().is_sensitive());
        assert!(h.get(AUTHORIZATION).is_none());
        let c = client(Settings {
            auth: Auth::EntraToken,
            ..Settings::default()
        });
        let h = c.headers(&c.config.api_key).unwrap();
        assert_eq!(h.get(AUTHORIZATION).unwrap(), "Bearer k-123");
        assert!(h.get("api-key").is_none());
        // A caller's own key (a passthrough route) is an api-key.
        let h = c.headers(&ApiKey::new("callers")).unwrap();
        assert_eq!(h.get("api-key").unwrap(), "callers");
    }
}

#[cfg(test)]
mod wire_tests {
    #![allow(clippy::unwrap_used)]
    use super::super::http::{SseParser, retry_after};
    use super::super::sse::SseEvent;
    use super::*;
    use crate::provider::{StopReason, StreamEvent};
    use std::collections::VecDeque;
    use std::time::Duration;

    #[test]
    fn azures_millisecond_retry_header_is_read() {
        let mut h = HeaderMap::new();
        h.insert("x-ms-retry-after-ms", HeaderValue::from_static("1250"));
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1250)));
    }

    /// Chunks as Azure streams them: the prompt's filter results first, with an empty id and model,
    /// then the reply, which a content filter ends.
    #[test]
    fn the_real_model_comes_from_the_chunk_after_the_filter_results() {
        let chunks = [
            r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
            r#"{"choices":[{"content_filter_results":{},"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0}],"created":1,"id":"chatcmpl-A1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk"}"#,
            r#"{"choices":[{"content_filter_results":{"violence":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hi"},"finish_reason":null,"index":0}],"created":1,"id":"chatcmpl-A1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk"}"#,
            r#"{"choices":[{"content_filter_results":{"violence":{"filtered":true,"severity":"medium"}},"delta":{},"finish_reason":"content_filter","index":0}],"created":1,"id":"chatcmpl-A1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk"}"#,
            "[DONE]",
        ];
        let mut parser = OpenAiParser::default();
        let mut out = VecDeque::new();
        for data in chunks {
            let event = SseEvent {
                event: None,
                data: data.to_string(),
            };
            parser.event(event, &mut out).unwrap();
        }
        let events: Vec<StreamEvent> = out.into_iter().collect();
        assert_eq!(
            events[0],
            StreamEvent::MessageStart {
                id: "chatcmpl-A1".into(),
                model: "gpt-4o-2024-11-20".into()
            }
        );
        assert_eq!(events[1], StreamEvent::TextDelta { text: "Hi".into() });
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Done {
                stop_reason: StopReason::ContentFilter,
                ..
            })
        ));
    }
}
