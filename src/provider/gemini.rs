//! Google Gemini, streaming (`POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse`,
//! the key in `x-goog-api-key`), and Vertex AI's flavour of it (a base URL ending in
//! `/publishers/google`, a bearer token; see [`crate::protocol::gemini::is_vertex`]).

use super::http::{self, Failure, Flow, SseParser};
use super::sse::SseEvent;
use super::{
    ApiKey, Content, ErrorClass, OutputFormat, Protocol, Provider, ProviderConfig, ProviderStream,
    Request, Role, StopReason, StreamEvent, ToolChoice,
};
use crate::json::{self, Fields};
use crate::protocol::gemini as wire;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, InvalidHeaderValue,
};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};

pub struct GeminiClient {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl GeminiClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        GeminiClient { config, http }
    }

    /// The JSON body for `request`: the caller's own when it came in Gemini (every field kept:
    /// thought signatures, safety settings, fields newer than this code), else built from it.
    /// The model is not in the body but in the path.
    pub fn request_body(&self, request: &Request) -> String {
        if let Some(body) = passthrough_body(request) {
            return body;
        }
        let mut body = json!({});
        if let Some(system) = request.joined_system() {
            body["systemInstruction"] = json!({"parts": [{"text": system}]});
        }
        body["generationConfig"] = generation_config(request);
        if !request.tools.is_empty() {
            let declarations: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    let mut declaration =
                        json!({"name": t.name, "parametersJsonSchema": t.input_schema});
                    if !t.description.is_empty() {
                        declaration["description"] = json!(t.description);
                    }
                    declaration
                })
                .collect();
            body["tools"] = json!([{ "functionDeclarations": declarations }]);
            if let Some(choice) = &request.tool_choice {
                body["toolConfig"] = json!({ "functionCallingConfig": match choice {
                    ToolChoice::Auto => json!({"mode": "AUTO"}),
                    ToolChoice::None => json!({"mode": "NONE"}),
                    ToolChoice::Any => json!({"mode": "ANY"}),
                    ToolChoice::Tool { name } => {
                        json!({"mode": "ANY", "allowedFunctionNames": [name]})
                    }
                }});
            }
        }
        // A tool's result names the function, which our model keeps on the call only.
        let names: HashMap<&str, &str> = request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(|c| match c {
                Content::ToolUse { id, name, .. } => Some((id.as_str(), name.as_str())),
                _ => None,
            })
            .collect();
        let contents = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .filter_map(|m| content(m.role, &m.content, &names));
        json::object_with_array(&body, "contents", contents)
    }

    fn headers(&self, key: &ApiKey) -> Result<HeaderMap, InvalidHeaderValue> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if !key.is_empty() {
            if wire::is_vertex(&self.config.base_url) {
                let bearer = format!("Bearer {}", key.expose());
                headers.insert(AUTHORIZATION, http::secret_header(&bearer)?);
            } else {
                headers.insert(wire::KEY_HEADER, http::secret_header(key.expose())?);
            }
        }
        Ok(headers)
    }
}

/// `generationConfig`: the output limit, sampling, stop sequences and the reply's format.
fn generation_config(request: &Request) -> Value {
    let mut config = json!({ "maxOutputTokens": request.max_tokens });
    if let Some(t) = request.temperature {
        config["temperature"] = json!(t);
    }
    if let Some(p) = request.top_p {
        config["topP"] = json!(p);
    }
    if let Some(k) = request.top_k {
        config["topK"] = json!(k);
    }
    if !request.stop.is_empty() {
        config["stopSequences"] = json!(request.stop);
    }
    match &request.output_format {
        Some(OutputFormat::JsonObject) => config["responseMimeType"] = json!("application/json"),
        Some(OutputFormat::JsonSchema { schema, .. }) => {
            config["responseMimeType"] = json!("application/json");
            config["responseJsonSchema"] = schema.clone();
        }
        None => {}
    }
    config
}

/// The caller's Gemini body as sent; a continuation appends the prefill as the model's last
/// turn and sets what is left of the output limit.
fn passthrough_body(request: &Request) -> Option<String> {
    let original = request
        .original
        .as_deref()
        .filter(|o| o.protocol == Protocol::Gemini)?;
    let fields = Fields::parse(&original.body).ok()?;
    let Some(prefill) = &request.prefill else {
        return Some(String::from_utf8_lossy(&original.body).into_owned());
    };
    let turn = json!({"role": "model", "parts": [{"text": prefill}]});
    let mut contents: Vec<Value> = fields
        .raw("contents")
        .and_then(|raw| json::items(raw).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|raw| json::parse(raw).ok())
        .collect();
    contents.push(turn);
    let mut config = match fields.value("generationConfig") {
        Some(Value::Object(config)) => config,
        _ => Map::new(),
    };
    config.insert("maxOutputTokens".into(), json!(request.max_tokens));
    Some(json::with_fields(
        &fields,
        &[
            ("contents", Value::Array(contents).to_string()),
            ("generationConfig", Value::Object(config).to_string()),
        ],
    ))
}

/// One of our messages as a Gemini `Content` (`None` when nothing in it crosses).
fn content(role: Role, blocks: &[Content], names: &HashMap<&str, &str>) -> Option<Value> {
    let parts: Vec<Value> = blocks
        .iter()
        .filter_map(|block| part(block, names))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let role = match role {
        Role::Assistant => "model",
        Role::User | Role::System => "user",
    };
    Some(json!({"role": role, "parts": parts}))
}

fn part(block: &Content, names: &HashMap<&str, &str>) -> Option<Value> {
    Some(match block {
        Content::Text { text } if text.is_empty() => return None,
        Content::Text { text } => json!({"text": text}),
        Content::Image { url } => media(url, "image/jpeg"),
        Content::File { url, .. } => media(url, "application/pdf"),
        // A call Gemini did not make carries no signature of Gemini's: the documented stand-in.
        Content::ToolUse { name, input, .. } => json!({
            "functionCall": {"name": name, "args": input},
            "thoughtSignature": wire::FOREIGN_SIGNATURE,
        }),
        Content::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            let name = names
                .get(tool_use_id.as_str())
                .copied()
                .unwrap_or(tool_use_id);
            let key = if *is_error { "error" } else { "result" };
            json!({"functionResponse": {"name": name, "response": {key: content}}})
        }
    })
}

/// An image or document: its bytes inline (`data:` URLs), else where it is.
fn media(url: &str, default_type: &str) -> Value {
    match super::data_url(url) {
        Some((mime_type, data)) => json!({"inlineData": {"mimeType": mime_type, "data": data}}),
        None => json!({"fileData": {"mimeType": default_type, "fileUri": url}}),
    }
}

impl Provider for GeminiClient {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn default_model(&self) -> &str {
        &self.config.model
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(Protocol::Gemini)
    }
    fn stream(&self, request: Request) -> ProviderStream {
        let body = self.request_body(&request);
        let model = request.model_or(&self.config.model).to_string();
        let path = wire::path_below(&self.config.base_url, &model, true);
        http::send(
            &self.http,
            &self.config,
            Protocol::Gemini,
            &request,
            |key| self.headers(key),
            &path,
            body,
            GeminiParser::default(),
        )
    }
}

/// `GenerateContentResponse` chunks → normalized events. Gemini has no end marker: the chunk
/// with a `finishReason` is the last one, and the server closes the stream after it.
#[derive(Debug, Default)]
pub struct GeminiParser {
    started: bool,
    response_id: String,
    /// Function calls so far (Gemini sends each whole, in one part).
    calls: u32,
    finish_reason: Option<String>,
}

impl GeminiParser {
    fn start(&mut self, chunk: &Value, out: &mut VecDeque<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let text = |key: &str| chunk.get(key).and_then(Value::as_str).unwrap_or_default();
        self.response_id = text("responseId").to_string();
        out.push_back(StreamEvent::MessageStart {
            id: self.response_id.clone(),
            model: text("modelVersion").to_string(),
        });
    }

    fn part(&mut self, part: &Value, out: &mut VecDeque<StreamEvent>) {
        if let Some(call) = part.get("functionCall") {
            let index = self.calls;
            self.calls += 1;
            let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
            // The Gemini API gives its calls no id (Vertex AI sometimes does): one is made,
            // unique within the reply.
            let id = call.get("id").and_then(Value::as_str).map_or_else(
                || format!("call_{}_{index}", self.response_id),
                str::to_string,
            );
            let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
            out.push_back(StreamEvent::ToolCallStart {
                index,
                id,
                name: name.to_string(),
            });
            out.push_back(StreamEvent::ToolCallDelta {
                index,
                partial_json: args.to_string(),
            });
            return;
        }
        let Some(text) = part
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        else {
            return;
        };
        let text = text.to_string();
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            out.push_back(StreamEvent::ThinkingDelta { text });
        } else {
            out.push_back(StreamEvent::TextDelta { text });
        }
    }

    fn done(&self, out: &mut VecDeque<StreamEvent>) {
        let raw = self.finish_reason.clone();
        let stop_reason = match raw.as_deref().map(wire::finish_reason) {
            // Gemini ends a function call with STOP.
            Some(StopReason::EndTurn) if self.calls > 0 => StopReason::ToolUse,
            Some(reason) => reason,
            None => StopReason::Other,
        };
        out.push_back(StreamEvent::Done {
            stop_reason,
            raw_stop_reason: raw,
        });
    }
}

/// A prompt Gemini refused to answer (`promptFeedback.blockReason`, no candidates).
fn blocked(chunk: &Value) -> Option<Failure> {
    let feedback = chunk.get("promptFeedback")?;
    let reason = feedback.get("blockReason")?.as_str()?;
    let detail = feedback
        .get("blockReasonMessage")
        .and_then(Value::as_str)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let mut failure = Failure::new(
        ErrorClass::ContentFilter,
        format!("the prompt was blocked ({reason}){detail}"),
    );
    failure.code = Some(reason.to_string());
    Some(failure)
}

impl SseParser for GeminiParser {
    fn event(&mut self, event: SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<Flow, Failure> {
        let chunk: Value = serde_json::from_str(&event.data)
            .map_err(|e| Failure::malformed("bad GenerateContentResponse", e))?;
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return Err(Failure::from_error_body(None, &event.data));
        }
        let candidates = chunk.get("candidates").and_then(Value::as_array);
        if candidates.is_none_or(|c| c.is_empty())
            && let Some(failure) = blocked(&chunk)
        {
            return Err(failure);
        }
        self.start(&chunk, out);
        if let Some(candidate) = candidates.and_then(|c| c.first()) {
            let parts = candidate
                .get("content")
                .and_then(|c| c.get("parts"))
                .and_then(Value::as_array);
            for part in parts.into_iter().flatten() {
                self.part(part, out);
            }
            if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_string());
            }
        }
        if let Some(metadata) = chunk.get("usageMetadata") {
            out.push_back(StreamEvent::Usage(wire::usage(metadata)));
        }
        Ok(Flow::More)
    }

    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), Failure> {
        if self.finish_reason.is_some() {
            self.done(out);
            Ok(())
        } else {
            Err(Failure::new(
                ErrorClass::StreamCut,
                "stream ended before a finishReason",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provider::Message;
    use std::sync::Arc;

    fn client(base_url: &str) -> GeminiClient {
        let config = ProviderConfig::new("gemini", Protocol::Gemini, base_url);
        let http = http::client(&config.timeouts).unwrap();
        GeminiClient::new(config, http)
    }

    #[test]
    fn a_tool_round_trip_names_the_function_in_its_response() {
        let request = Request {
            system: Some("be brief".into()),
            messages: Arc::new(vec![
                Message::user("weather?"),
                Message {
                    role: Role::Assistant,
                    content: vec![Content::ToolUse {
                        id: "toolu_1".into(),
                        name: "get_weather".into(),
                        input: json!({"city": "Paris"}),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![Content::ToolResult {
                        tool_use_id: "toolu_1".into(),
                        content: "sunny".into(),
                        is_error: false,
                    }],
                },
            ]),
            stop: vec!["END".into()],
            ..Request::prompt("")
        };
        let body: Value = serde_json::from_str(&client("http://h").request_body(&request)).unwrap();
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 1024);
        assert_eq!(body["generationConfig"]["stopSequences"][0], "END");
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(
            body["contents"][1]["parts"][0]["functionCall"]["args"]["city"],
            "Paris"
        );
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"],
            json!({"name": "get_weather", "response": {"result": "sunny"}})
        );
    }

    #[test]
    fn a_gemini_callers_body_passes_as_sent_and_a_continuation_appends_its_prefill() {
        let sent = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}},"thoughtSignature":"c2ln"}]}],"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}],"generationConfig":{"thinkingConfig":{"thinkingLevel":"low"},"maxOutputTokens":900}}"#;
        let mut request = Request {
            original: Some(Arc::new(crate::provider::Original {
                protocol: Protocol::Gemini,
                body: bytes::Bytes::from(sent),
                headers: Vec::new(),
                bound: false,
            })),
            ..Request::prompt("hi")
        };
        let c = client("http://h");
        assert_eq!(c.request_body(&request), sent, "byte for byte");
        request.prefill = Some("So far".into());
        request.max_tokens = 300;
        let body: Value = serde_json::from_str(&c.request_body(&request)).unwrap();
        assert_eq!(body["contents"][1]["parts"][0]["thoughtSignature"], "c2ln");
        assert_eq!(
            body["contents"][2],
            json!({"role": "model", "parts": [{"text": "So far"}]})
        );
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 300);
        assert_eq!(
            body["generationConfig"]["thinkingConfig"]["thinkingLevel"],
            "low"
        );
        assert_eq!(body["safetySettings"][0]["threshold"], "BLOCK_NONE");
    }

    #[test]
    fn vertex_base_urls_take_the_publisher_path() {
        let vertex = "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google";
        assert_eq!(
            wire::path_below(vertex, "gemini-2.5-pro", true),
            "/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        let headers = client(vertex).headers(&ApiKey::new("tok")).unwrap();
        assert_eq!(headers[AUTHORIZATION], "Bearer tok");
        let headers = client("https://generativelanguage.googleapis.com")
            .headers(&ApiKey::new("k"))
            .unwrap();
        assert_eq!(headers[wire::KEY_HEADER], "k");
        assert!(headers.get(AUTHORIZATION).is_none());
    }

    fn events(chunks: &[&str]) -> (Vec<StreamEvent>, Result<(), Failure>) {
        let mut parser = GeminiParser::default();
        let mut out = VecDeque::new();
        for data in chunks {
            let event = SseEvent {
                event: None,
                data: (*data).to_string(),
            };
            if let Err(f) = parser.event(event, &mut out) {
                return (out.into(), Err(f));
            }
        }
        let end = parser.end(&mut out);
        (out.into(), end)
    }

    #[test]
    fn thoughts_calls_and_the_stop() {
        let (out, end) = events(&[
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"hm","thought":true}]}}],"responseId":"r1","modelVersion":"gemini-2.5-flash"}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"c2ln"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"thoughtsTokenCount":2}}"#,
        ]);
        end.unwrap();
        assert_eq!(
            out[0],
            StreamEvent::MessageStart {
                id: "r1".into(),
                model: "gemini-2.5-flash".into()
            }
        );
        assert_eq!(out[1], StreamEvent::ThinkingDelta { text: "hm".into() });
        assert!(matches!(&out[2], StreamEvent::ToolCallStart { name, .. } if name == "f"));
        assert!(matches!(
            out.last(),
            Some(StreamEvent::Done {
                stop_reason: StopReason::ToolUse,
                ..
            })
        ));
    }

    #[test]
    fn a_blocked_prompt_and_an_in_stream_error_fail() {
        let (_, end) = events(&[r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}"#]);
        assert_eq!(end.unwrap_err().class, ErrorClass::ContentFilter);
        let (_, end) = events(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#,
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        ]);
        assert_eq!(end.unwrap_err().class, ErrorClass::Overloaded);
        let (_, end) = events(&[r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#]);
        assert_eq!(end.unwrap_err().class, ErrorClass::StreamCut);
        let (out, _) = events(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"SAFETY"}]}"#,
        ]);
        assert!(matches!(
            out.last(),
            Some(StreamEvent::Done {
                stop_reason: StopReason::ContentFilter,
                ..
            })
        ));
    }
}
