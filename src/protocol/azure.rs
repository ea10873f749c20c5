//! Azure OpenAI: OpenAI's Chat Completions ([`super::chat`]) as Azure serves it. What differs is
//! written here: the paths (a deployment's, with an `api-version` query, or the v1 path), the key
//! header, the error bodies (`{"error": {"code": "429", "message": …}}`), the retry header in
//! milliseconds (`x-ms-retry-after-ms` beside OpenAI's `retry-after-ms`) and the content-filter
//! results (`prompt_filter_results` in the first chunk, `content_filter_results` per choice).
//!
//! Ground truth: the official client, `openai.AzureOpenAI` (`openai/lib/azure.py`): it posts to
//! `{azure_endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…` with an
//! `api-key` header, or `Authorization: Bearer` with an Entra ID token (`AZURE_OPENAI_AD_TOKEN`,
//! which it prefers when both are set).

use super::ErrorClass;
use serde_json::{Value, json};

/// The API version the deployment paths ask for unless configured otherwise: the newest generally
/// available data-plane inference version. (`openai.AzureOpenAI` has no default of its own: it
/// requires `api_version` or `OPENAI_API_VERSION`.)
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// The `api_version` setting that picks the v1 path instead of a deployment's.
pub const V1: &str = "v1";

/// Where the v1 API takes a chat completion, below the endpoint: no `api-version`, and the
/// deployment named in the body's `model`.
pub const V1_PATH: &str = "/openai/v1/chat/completions";

/// Below the endpoint, before the deployment's name.
pub const DEPLOYMENTS_PREFIX: &str = "/openai/deployments/";

/// After the deployment's name.
pub const DEPLOYMENT_SUFFIX: &str = "/chat/completions";

/// The query parameter naming the API version on the deployment paths.
pub const API_VERSION_QUERY: &str = "api-version";

/// The key's header (an Entra ID token goes in `Authorization: Bearer` instead).
pub const API_KEY_HEADER: &str = "api-key";

/// The environment variable holding the key, unless `api_key_env` names another.
pub const API_KEY_ENV: &str = "AZURE_OPENAI_API_KEY";

/// The environment variable holding an Entra ID token, unless `ad_token_env` names another.
pub const AD_TOKEN_ENV: &str = "AZURE_OPENAI_AD_TOKEN";

/// The environment variable holding the endpoint (`https://RESOURCE.openai.azure.com`).
pub const ENDPOINT_ENV: &str = "AZURE_OPENAI_ENDPOINT";

/// The request headers a passthrough forwards: Chat Completions' own.
pub const FORWARDED_HEADERS: &[&str] = super::chat::FORWARDED_HEADERS;

/// The retry hints in milliseconds, in the order they are read (`retry-after`, in seconds, after
/// them).
pub const RETRY_AFTER_MS_HEADERS: [&str; 2] = ["retry-after-ms", "x-ms-retry-after-ms"];

/// The response header that carries the request's id (Azure's API Management; `x-request-id`
/// comes too).
pub const REQUEST_ID_HEADER: &str = "apim-request-id";

/// The categories of a content-filter result, each `{filtered, severity}`.
pub const FILTER_CATEGORIES: [&str; 4] = ["hate", "self_harm", "sexual", "violence"];

/// The path below the endpoint for `deployment` at `api_version` (`v1`: the v1 path), its query
/// included; the deployment's name is percent-encoded as a path segment.
pub fn chat_path(deployment: &str, api_version: &str) -> String {
    if api_version == V1 {
        return V1_PATH.to_string();
    }
    let encode = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "{DEPLOYMENTS_PREFIX}{}{DEPLOYMENT_SUFFIX}?{API_VERSION_QUERY}={}",
        encode(deployment),
        encode(api_version)
    )
}

/// The deployment a request path names (`/openai/deployments/{deployment}/chat/completions`, its
/// query left out), or `None` for another path.
pub fn deployment_of(path: &str) -> Option<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let name = path
        .strip_prefix(DEPLOYMENTS_PREFIX)?
        .strip_suffix(DEPLOYMENT_SUFFIX)?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// One content-filter result: every category safe, but `filtered` (one of
/// [`FILTER_CATEGORIES`]), which is filtered at medium severity.
pub fn filter_results(filtered: Option<&str>) -> Value {
    let mut results = serde_json::Map::new();
    for category in FILTER_CATEGORIES {
        let hit = filtered == Some(category);
        let severity = if hit { "medium" } else { "safe" };
        results.insert(
            category.to_string(),
            json!({"filtered": hit, "severity": severity}),
        );
    }
    Value::Object(results)
}

/// The `prompt_filter_results` of a request whose prompt passed the filters.
pub fn prompt_filter_results() -> Value {
    json!([{"prompt_index": 0, "content_filter_results": filter_results(None)}])
}

/// The first category a `content_filter_results` object says was filtered.
pub fn filtered_category(results: &Value) -> Option<&str> {
    results.as_object()?.iter().find_map(|(category, result)| {
        (result.get("filtered").and_then(Value::as_bool) == Some(true)).then_some(category.as_str())
    })
}

/// Azure's error body: `{"error": {"code", "message", …}}`; `code` is a string even for an HTTP
/// status (`"429"`), and a content-filter refusal says what was filtered in `innererror`.
pub fn error_body(class: ErrorClass, status: u16, message: &str) -> Value {
    let code = error_code(class, status);
    let mut error = json!({"code": code, "message": message});
    match class {
        ErrorClass::ContentFilter => {
            error["param"] = json!("prompt");
            error["type"] = Value::Null;
            error["status"] = json!(status);
            error["innererror"] = json!({
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": filter_results(Some("violence")),
            });
        }
        ErrorClass::ContextLength | ErrorClass::BadRequest => {
            error["param"] = if class == ErrorClass::ContextLength {
                json!("messages")
            } else {
                Value::Null
            };
            error["type"] = json!("invalid_request_error");
        }
        _ => {}
    }
    json!({ "error": error })
}

/// The `error.code` Azure gives a failure of `class` answered with `status`: the status itself for
/// the throttling and access errors (as Azure writes them), else a name that breakerbox's and the
/// official clients' parsers read back as the same class.
pub fn error_code(class: ErrorClass, status: u16) -> String {
    use ErrorClass as C;
    match class {
        C::RateLimited | C::Auth | C::Permission => status.to_string(),
        C::Quota => "insufficient_quota".into(),
        C::ContentFilter => "content_filter".into(),
        C::ContextLength => "context_length_exceeded".into(),
        C::NotFound => "DeploymentNotFound".into(),
        C::BadRequest | C::TooLarge => "BadRequest".into(),
        C::Overloaded => "ServiceUnavailable".into(),
        C::Timeout | C::Stalled => "Timeout".into(),
        _ => "InternalServerError".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_paths_are_built_and_read_back() {
        let path = chat_path("gpt-4o prod", "2024-10-21");
        assert_eq!(
            path,
            "/openai/deployments/gpt-4o%20prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(chat_path("anything", V1), V1_PATH);
        assert_eq!(
            deployment_of("/openai/deployments/gpt-4o/chat/completions?api-version=1"),
            Some("gpt-4o")
        );
        assert_eq!(deployment_of("/openai/deployments//chat/completions"), None);
        assert_eq!(deployment_of("/openai/v1/chat/completions"), None);
    }

    #[test]
    fn error_bodies_classify_back_to_their_class() {
        for (class, status) in [
            (ErrorClass::RateLimited, 429),
            (ErrorClass::Quota, 429),
            (ErrorClass::ContentFilter, 400),
            (ErrorClass::ContextLength, 400),
            (ErrorClass::BadRequest, 400),
            (ErrorClass::Auth, 401),
            (ErrorClass::NotFound, 404),
            (ErrorClass::Overloaded, 503),
            (ErrorClass::ServerError, 500),
        ] {
            let body = error_body(class, status, "m");
            let code = body["error"]["code"].as_str();
            let ty = body["error"]["type"].as_str();
            assert_eq!(
                ErrorClass::from_provider(Some(status), ty, code, "m"),
                class,
                "{body}"
            );
        }
        let filtered = error_body(ErrorClass::ContentFilter, 400, "m");
        let result = &filtered["error"]["innererror"]["content_filter_result"];
        assert_eq!(filtered_category(result), Some("violence"));
    }
}
