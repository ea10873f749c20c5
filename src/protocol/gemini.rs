//! Google Gemini (`POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse` and
//! `:generateContent`), and Vertex AI's flavour of it: its names for breakerbox's own things,
//! written once for the client, the simulator and the gateway. Ground truth: the `google-genai`
//! client's types (`GenerateContentResponse`, `Candidate`, `Part`, `FinishReason`,
//! `BlockedReason`, `GenerateContentResponseUsageMetadata`).

use super::{ErrorClass, StopReason, Usage};
use serde_json::{Value, json};
use std::time::Duration;

/// The API version the Gemini API's clients speak.
pub const API_VERSION: &str = "v1beta";

/// The header that carries the key (the official client's; `?key=` works too, and leaks into logs).
pub const KEY_HEADER: &str = "x-goog-api-key";

/// The request headers a passthrough forwards: none (the official client's `x-goog-api-client`
/// names the client, not the API it speaks).
pub const FORWARDED_HEADERS: &[&str] = &[];

/// The methods of a model, after the colon of its path.
pub const STREAM_METHOD: &str = "streamGenerateContent";
pub const WHOLE_METHOD: &str = "generateContent";

/// The `@type` of the error detail whose `retryDelay` says when to come back.
pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The path of a model's method below the base URL: the Gemini API's
/// (`/v1beta/models/{model}:…`), with `alt=sse` for a stream (without it the stream is one JSON
/// array).
pub fn path(model: &str, stream: bool) -> String {
    if stream {
        format!("/{API_VERSION}/models/{model}:{STREAM_METHOD}?alt=sse")
    } else {
        format!("/{API_VERSION}/models/{model}:{WHOLE_METHOD}")
    }
}

/// Whether a base URL is Vertex AI's flavour of the API: it names the publisher's models
/// (`https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/
/// publishers/google`), below which a model's methods are `/models/{model}:…` and the
/// credential is an OAuth bearer token instead of a key.
pub fn is_vertex(base_url: &str) -> bool {
    base_url
        .trim_end_matches('/')
        .ends_with("/publishers/google")
}

/// The path of a model's method below a base URL of either flavour.
pub fn path_below(base_url: &str, model: &str, stream: bool) -> String {
    let path = path(model, stream);
    if is_vertex(base_url) {
        path.trim_start_matches(&format!("/{API_VERSION}"))
            .to_string()
    } else {
        path
    }
}

/// `gemini-2.5-flash:streamGenerateContent` → the model and whether it streams; `None` for
/// another method.
pub fn split_method(target: &str) -> Option<(&str, bool)> {
    let (model, method) = target.rsplit_once(':')?;
    let model = model.strip_prefix("models/").unwrap_or(model);
    match method {
        STREAM_METHOD => Some((model, true)),
        WHOLE_METHOD => Some((model, false)),
        _ => None,
    }
}

/// A candidate's `finishReason` as ours. Everything Google names a safety, recitation or policy
/// stop is a content filter; a malformed or unexpected tool call is `Other` (the raw value says
/// which).
pub fn finish_reason(raw: &str) -> StopReason {
    match raw {
        "STOP" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "LANGUAGE" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

/// Our stop reason as a `finishReason`. Gemini ends a function call with `STOP` (it has no
/// tool-use reason) and a stop sequence with `STOP`.
pub fn wire_finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::ToolUse
        | StopReason::PauseTurn => "STOP",
        StopReason::MaxTokens | StopReason::ContextWindowExceeded => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::Other => "OTHER",
    }
}

/// The HTTP status and `error.status` an error of `class` gets, so that the official client
/// and breakerbox's own parser classify it back to the same class.
pub fn error_status(class: ErrorClass) -> (u16, &'static str) {
    use ErrorClass as C;
    match class {
        C::RateLimited | C::Quota => (429, "RESOURCE_EXHAUSTED"),
        C::Overloaded | C::Unavailable => (503, "UNAVAILABLE"),
        C::Timeout | C::Stalled => (504, "DEADLINE_EXCEEDED"),
        C::Auth => (401, "UNAUTHENTICATED"),
        C::Permission => (403, "PERMISSION_DENIED"),
        C::NotFound => (404, "NOT_FOUND"),
        C::TooLarge => (413, "INVALID_ARGUMENT"),
        C::Conflict => (409, "ABORTED"),
        C::BadRequest | C::ContextLength | C::ContentFilter => (400, "INVALID_ARGUMENT"),
        C::Cancelled => (499, "CANCELLED"),
        C::ServerError | C::Connect | C::StreamCut | C::Malformed | C::Redirect => {
            (500, "INTERNAL")
        }
    }
}

/// The error body Google sends: `{"error": {"code", "message", "status", "details"?}}`, with a
/// `RetryInfo` detail when it says when to retry.
pub fn error_body(code: u16, status: &str, message: &str, retry: Option<Duration>) -> Value {
    let mut error = json!({"code": code, "message": message, "status": status});
    if let Some(retry) = retry {
        error["details"] = json!([{"@type": RETRY_INFO_TYPE, "retryDelay": retry_delay(retry)}]);
    }
    json!({ "error": error })
}

/// A duration as a `google.protobuf.Duration` in JSON: seconds with up to nine decimals and an
/// `s` (`7s`, `0.250s`).
pub fn retry_delay(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
    }
}

/// The `retryDelay` of an error body's `RetryInfo` detail, when it has one.
pub fn retry_info(body: &str) -> Option<Duration> {
    let json: Value = serde_json::from_str(body).ok()?;
    json.get("error")?
        .get("details")?
        .as_array()?
        .iter()
        .filter(|d| d.get("@type").and_then(Value::as_str) == Some(RETRY_INFO_TYPE))
        .find_map(|d| parse_duration(d.get("retryDelay")?.as_str()?))
}

/// The `quotaId` of the Gemini API's requests-per-day quota: spent, it is not a rate limit that
/// passes in seconds but a quota that lasts the day.
pub const DAILY_QUOTA_ID: &str = "GenerateRequestsPerDayPerProjectPerModel";

/// Whether a 429's body names a per-day quota in a `QuotaFailure` detail (Google's 429 is one
/// status for both a per-minute rate limit and a spent daily quota).
pub fn daily_quota(body: &str) -> bool {
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        return false;
    };
    json.pointer("/error/details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.get("violations")?.as_array())
        .flatten()
        .filter_map(|v| v.get("quotaId")?.as_str())
        .any(|id| id.contains("PerDay"))
}

/// `7s`, `0.25s`, `1.5s` → a duration (a protobuf `Duration` in JSON).
fn parse_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs).ok())
        .flatten()
}

/// Usage from `usageMetadata`: `promptTokenCount` includes the cached tokens
/// (`cachedContentTokenCount`), ours counts them apart; the output is the candidates' tokens and
/// the thoughts' (`thoughtsTokenCount`, billed as output).
pub fn usage(metadata: &Value) -> Usage {
    let count = |key: &str| metadata.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cached = count("cachedContentTokenCount");
    let thoughts = count("thoughtsTokenCount");
    Usage {
        input_tokens: count("promptTokenCount").saturating_sub(cached),
        output_tokens: count("candidatesTokenCount").saturating_add(thoughts),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

/// Our usage as `usageMetadata`.
pub fn usage_json(usage: &Usage) -> Value {
    let prompt = usage.total_input();
    let candidates = usage.output_tokens.saturating_sub(usage.reasoning_tokens);
    let mut metadata = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt.saturating_add(usage.output_tokens),
    });
    if usage.cache_read_tokens > 0 {
        metadata["cachedContentTokenCount"] = json!(usage.cache_read_tokens);
    }
    if usage.reasoning_tokens > 0 {
        metadata["thoughtsTokenCount"] = json!(usage.reasoning_tokens);
    }
    metadata
}

/// A field of a request's JSON by its lowerCamelCase name, or by its proto name in snake_case:
/// Google's servers take both (protobuf's JSON mapping), and the official client sends some
/// fields one way (`functionDeclarations`) and some the other (`parameters_json_schema`).
pub trait Field {
    fn field(&self, camel: &str) -> Option<&Value>;
}

impl Field for Value {
    fn field(&self, camel: &str) -> Option<&Value> {
        self.get(camel).or_else(|| self.get(snake_case(camel)))
    }
}

/// `maxOutputTokens` → `max_output_tokens`.
pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The thought signature Google documents for function calls that Gemini did not make (history
/// from another model): Gemini 3 checks the signatures of its own calls and skips this one.
pub const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_is_read_from_the_details() {
        let body = error_body(
            429,
            "RESOURCE_EXHAUSTED",
            "quota",
            Some(Duration::from_secs(7)),
        );
        assert_eq!(body["error"]["details"][0]["retryDelay"], "7s");
        assert_eq!(retry_info(&body.to_string()), Some(Duration::from_secs(7)));
        let body = r#"{"error":{"code":429,"details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure"},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.250s"}]}}"#;
        assert_eq!(retry_info(body), Some(Duration::from_millis(250)));
        assert_eq!(retry_info(r#"{"error":{"code":500}}"#), None);
        assert_eq!(retry_delay(Duration::from_millis(1500)), "1.500s");
    }

    #[test]
    fn methods_and_stops() {
        assert_eq!(
            split_method("gemini-2.5-flash:streamGenerateContent"),
            Some(("gemini-2.5-flash", true))
        );
        assert_eq!(
            split_method("models/gemini-2.5-pro:generateContent"),
            Some(("gemini-2.5-pro", false))
        );
        assert_eq!(split_method("gemini-2.5-pro:countTokens"), None);
        assert_eq!(finish_reason("SPII"), StopReason::ContentFilter);
        assert_eq!(finish_reason("MALFORMED_FUNCTION_CALL"), StopReason::Other);
        assert_eq!(wire_finish_reason(StopReason::ToolUse), "STOP");
    }

    #[test]
    fn usage_counts_cached_apart_and_thoughts_as_output() {
        let u = usage(
            &json!({"promptTokenCount": 100, "cachedContentTokenCount": 40,
                              "candidatesTokenCount": 10, "thoughtsTokenCount": 5}),
        );
        assert_eq!(
            (
                u.input_tokens,
                u.cache_read_tokens,
                u.output_tokens,
                u.reasoning_tokens
            ),
            (60, 40, 15, 5)
        );
        assert_eq!(usage(&usage_json(&u)), u);
    }
}
