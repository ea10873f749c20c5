//! Google Gemini over real sockets: the simulator's wire (the key checked, `data:`-only SSE, the
//! whole `:generateContent` response, Google's error shape with `RetryInfo`), failover from a
//! Gemini primary to Anthropic and from Anthropic and OpenAI primaries to Gemini through the
//! engine, and the gateway's Gemini side: passed through to a Gemini target, translated from
//! another protocol's target, and a Gemini target answering an Anthropic client. The official
//! `google-genai` client is checked against the simulator and the gateway in `sdk` and
//! `sdk_gateway`.

use crate::support::demo_config::FAST_SIM;
use crate::support::sim::{self, fast};
use breakerbox::cli::CommonArgs;
use breakerbox::config::{Config, TargetEntry};
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, EventKind, Outcome, Source};
use breakerbox::gateway::{self, server::Running};
use breakerbox::provider::{Protocol, Request, StreamEvent};
use breakerbox::session::setup::{self, Setup};
use breakerbox::sim::SimConfig;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

const FAST: &str = r#"
[timeouts]
headers = "400ms"
first_event = "400ms"
idle = "300ms"

[retry]
max_retries = 0

[sim]
seed = 3

[[sim.providers]]
name = "gemini"
protocol = "gemini"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[chains]]
name = "gemini_first"
targets = ["gemini", "anthropic"]

[[chains]]
name = "anthropic_first"
targets = ["anthropic", "gemini"]

[[chains]]
name = "openai_first"
targets = ["openai", "gemini"]

[[routes]]
model = "gemini-2.5-flash"
chain = "gemini_first"

[[routes]]
model = "claude-via-gemini"
chain = "anthropic_first"
"#;

fn config() -> Config {
    Config::parse(&format!("{FAST}{FAST_SIM}"), "test.toml").unwrap()
}

/// The SSE `data:` payloads of a body (Gemini's events have no names).
fn frames(text: &str) -> Vec<Value> {
    text.split("\r\n\r\n")
        .flat_map(|frame| frame.split("\n\n"))
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            assert!(!frame.contains("event:"), "no event names: {frame}");
            let data = frame
                .trim()
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("{frame}"));
            serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {frame}"))
        })
        .collect()
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| {
            c.pointer("/candidates/0/content/parts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The simulator's wire
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_simulator_speaks_gemini() {
    let sim = sim::start(SimConfig {
        providers: vec![fast("gemini", Protocol::Gemini)],
        seed: 7,
    })
    .await;
    let base = sim.base_url("gemini").unwrap();
    assert!(!base.ends_with("/v1"), "the google-genai base URL: {base}");
    // `GET /_sim/providers` gives the base URL the official client takes.
    let listed: Value = sim::client()
        .get(format!("http://{}/_sim/providers", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed
        .as_array()
        .or_else(|| listed["providers"].as_array())
        .and_then(|all| all.iter().find(|p| p["name"] == "gemini"))
        .cloned()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(listed["protocol"], "gemini");
    assert_eq!(listed["base_url"], base.as_str());
    let body = sim::body_for(Protocol::Gemini, true);
    let post = |url: String, key: Option<&'static str>| {
        let body = body.clone();
        async move {
            let mut request = sim::client().post(url).json(&body);
            if let Some(key) = key {
                request = request.header("x-goog-api-key", key);
            }
            request.send().await.unwrap()
        }
    };
    let stream_url = format!("{base}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse");

    // Without a key: Google's 403.
    let response = post(stream_url.clone(), None).await;
    assert_eq!(response.status(), 403);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(error["error"]["code"], 403);

    // Streamed: data-only frames, one response id, the model of the path, a finish at the end.
    let response = post(stream_url.clone(), Some("k")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let chunks = frames(&response.text().await.unwrap());
    assert!(chunks.len() > 3);
    let id = chunks[0]["responseId"].as_str().unwrap().to_string();
    for c in &chunks {
        assert_eq!(c["responseId"], id.as_str());
        assert_eq!(c["modelVersion"], "gemini-2.5-pro");
        assert_eq!(c["candidates"][0]["content"]["role"], "model");
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );
    let said = text_of(&chunks);
    let usage = &last["usageMetadata"];
    assert!(usage["promptTokenCount"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["candidatesTokenCount"].as_u64().unwrap(),
        said.split_whitespace().count() as u64
    );

    // Whole: the same words in one response.
    let whole = post(
        format!("{base}/v1beta/models/gemini-2.5-pro:generateContent"),
        Some("k"),
    )
    .await;
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    assert_eq!(
        whole["candidates"][0]["content"]["parts"][0]["text"],
        said.as_str()
    );
    assert_eq!(whole["candidates"][0]["finishReason"], "STOP");

    // Vertex AI's path and a bearer token, answered alike.
    let vertex = format!(
        "{base}/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    let response = sim::client()
        .post(vertex)
        .bearer_auth("ya29.token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Another method of the model is not served.
    let other = post(
        format!("{base}/v1beta/models/gemini-2.5-pro:countTokens"),
        Some("k"),
    )
    .await;
    assert_eq!(other.status(), 404);

    // Errors in Google's shape: a rate limit says when to retry in a RetryInfo detail.
    sim::set(&sim, "gemini", "rate_limit:retry_after=7s");
    let response = post(stream_url.clone(), Some("k")).await;
    assert_eq!(response.status(), 429);
    assert!(
        response.headers().get("retry-after").is_none(),
        "Google says it in the body"
    );
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        error["error"]["details"][0],
        json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"})
    );
    for (fault, status, name) in [
        ("overloaded", 503, "UNAVAILABLE"),
        ("server_error", 500, "INTERNAL"),
        ("server_error:status=504", 504, "DEADLINE_EXCEEDED"),
        ("bad_request", 400, "INVALID_ARGUMENT"),
        ("context_length", 400, "INVALID_ARGUMENT"),
        ("auth", 400, "INVALID_ARGUMENT"),
        ("quota", 429, "RESOURCE_EXHAUSTED"),
    ] {
        sim::set(&sim, "gemini", fault);
        let response = post(stream_url.clone(), Some("k")).await;
        assert_eq!(response.status(), status, "{fault}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["status"], name, "{fault}");
        assert_eq!(error["error"]["code"], status, "{fault}");
    }

    // A blocked prompt is a 200 whose one chunk has no candidates.
    sim::set(&sim, "gemini", "content_filter");
    let response = post(stream_url.clone(), Some("k")).await;
    assert_eq!(response.status(), 200);
    let chunks = frames(&response.text().await.unwrap());
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["promptFeedback"]["blockReason"], "SAFETY");
    assert!(chunks[0].get("candidates").is_none());

    // A mid-stream error is an `error` payload, and then the stream ends.
    sim::set(&sim, "gemini", "mid_stream_error:after=2");
    let text = post(stream_url, Some("k")).await.text().await.unwrap();
    let chunks = frames(&text);
    assert_eq!(chunks.len(), 3, "{text}");
    assert_eq!(chunks[2]["error"]["status"], "UNAVAILABLE");
}

// ---------------------------------------------------------------------------------------------
// Failover through the engine
// ---------------------------------------------------------------------------------------------

async fn chain(first: &str, second: &str) -> (Setup, FailoverEngine) {
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config(), Bus::new(1 << 16), &|_| None)
        .await
        .expect("demo setup");
    let engine = setup
        .engine_for(
            "gemini_test",
            &[
                TargetEntry::Name(first.into()),
                TargetEntry::Name(second.into()),
            ],
            Default::default(),
            None,
        )
        .expect("engine");
    (setup, engine)
}

/// Who answered, the classes of the failures on the way, the text the caller kept, and whether a
/// rewind was sent.
async fn ask(engine: &FailoverEngine) -> (Option<String>, Vec<String>, String, bool) {
    let mut rx = engine.shared().bus.subscribe();
    let (id, mut stream) = engine.send(
        Request::prompt("Why do circuit breakers half-open?"),
        RequestMeta::new(Source::Ask),
    );
    let (mut text, mut rewound, mut done) = (String::new(), false, false);
    while let Some(item) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the engine never hangs")
    {
        match item {
            Ok(StreamEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(StreamEvent::Rewind { .. }) => {
                rewound = true;
                text.clear();
            }
            Ok(StreamEvent::Done { .. }) => done = true,
            _ => {}
        }
    }
    let (mut answered, mut failures) = (None, Vec::new());
    while let Ok(e) = rx.try_recv() {
        if serde_json::to_value(&*e).unwrap()["request_id"].as_str() != Some(id.as_str()) {
            continue;
        }
        match &e.kind {
            EventKind::AttemptFailed { class, .. } => failures.push(class.to_string()),
            EventKind::RequestFinished {
                outcome, provider, ..
            } => {
                assert_eq!(*outcome, Outcome::Ok, "{failures:?}");
                answered.clone_from(provider);
            }
            _ => {}
        }
    }
    assert!(done, "the caller got Done: {failures:?}");
    (answered, failures, text, rewound)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_primary_fails_over_to_anthropic() {
    let (setup, engine) = chain("gemini", "anthropic").await;
    let (answered, failures, text, _) = ask(&engine).await;
    assert_eq!((answered.as_deref(), failures.len()), (Some("gemini"), 0));
    assert!(!text.is_empty());
    setup.sim.unwrap().shutdown().await;

    for (fault, class, rewind) in [
        ("rate_limit:retry_after=2s", "rate_limited", false),
        ("overloaded", "overloaded", false),
        ("server_error", "server_error", false),
        ("auth", "auth", false),
        ("stream_cut:after=3", "stream_cut", true),
        ("mid_stream_error:after=3", "overloaded", true),
        ("malformed:after=3", "malformed", true),
        ("no_done", "stream_cut", true),
    ] {
        let (setup, engine) = chain("gemini", "anthropic").await;
        sim::set(setup.sim.as_ref().unwrap(), "gemini", fault);
        let (answered, failures, text, rewound) = ask(&engine).await;
        assert_eq!(failures, [class], "{fault}");
        assert_eq!(answered.as_deref(), Some("anthropic"), "{fault}");
        assert!(!text.is_empty(), "{fault}");
        assert_eq!(rewound, rewind, "{fault}: rewind");
        setup.sim.unwrap().shutdown().await;
    }

    // A blocked prompt is the caller's to hear (content_filter does not fail over by default).
    let (setup, engine) = chain("gemini", "anthropic").await;
    sim::set(setup.sim.as_ref().unwrap(), "gemini", "content_filter");
    let mut rx = engine.shared().bus.subscribe();
    let (_, mut stream) = engine.send(Request::prompt("hi"), RequestMeta::new(Source::Ask));
    while stream.next().await.is_some() {}
    let finished = std::iter::from_fn(|| rx.try_recv().ok())
        .find_map(|e| match &e.kind {
            EventKind::RequestFinished { outcome, class, .. } => Some((*outcome, *class)),
            _ => None,
        })
        .expect("request_finished");
    assert_eq!(
        finished,
        (
            Outcome::Error,
            Some(breakerbox::provider::ErrorClass::ContentFilter)
        )
    );
    setup.sim.unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_and_openai_primaries_fail_over_to_gemini() {
    for primary in ["anthropic", "openai"] {
        for (fault, class) in [
            ("overloaded", "overloaded"),
            ("stream_cut:after=3", "stream_cut"),
        ] {
            let (setup, engine) = chain(primary, "gemini").await;
            sim::set(setup.sim.as_ref().unwrap(), primary, fault);
            let (answered, failures, text, _) = ask(&engine).await;
            assert_eq!(failures, [class], "{primary} {fault}");
            assert_eq!(answered.as_deref(), Some("gemini"), "{primary} {fault}");
            assert!(
                text.split_whitespace().count() > 3,
                "{primary} {fault}: {text:?}"
            );
            setup.sim.unwrap().shutdown().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway's Gemini side
// ---------------------------------------------------------------------------------------------

struct Gw {
    running: Option<Running>,
    base: String,
}

impl Gw {
    async fn start(faults: &[&str]) -> Gw {
        let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
        let (running, _sim, _bus) = gateway::start_demo(&config(), &faults, None).await.unwrap();
        Gw {
            base: format!("http://{}", running.addr),
            running: Some(running),
        }
    }

    async fn post(&self, method: &str, body: &Value) -> reqwest::Response {
        sim::client()
            .post(format!(
                "{}/v1beta/models/gemini-2.5-flash:{method}",
                self.base
            ))
            .header("x-goog-api-key", "client-key")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

fn weather_request() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "What's the weather in Paris? Use get_weather"}]}],
        "tools": [{"functionDeclarations": [{
            "name": "get_weather",
            "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }]}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_client_through_the_gateway_is_passed_through_or_translated() {
    // A Gemini target: its chunks as they came (the simulator's `promptTokensDetails` is not a
    // field the gateway writes).
    let gw = Gw::start(&[]).await;
    let body = sim::body_for(Protocol::Gemini, true);
    let response = gw.post("streamGenerateContent?alt=sse", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-breakerbox-provider"], "gemini");
    let text = response.text().await.unwrap();
    assert!(
        text.contains("promptTokensDetails"),
        "passed through: {text}"
    );
    let chunks = frames(&text);
    assert_eq!(
        chunks.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
    let said = text_of(&chunks);
    let whole = gw.post("generateContent", &body).await;
    assert_eq!(whole.status(), 200);
    let whole: Value = whole.json().await.unwrap();
    // The upstream's words, one part, as Gemini's whole responses have them.
    assert_eq!(
        whole["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{whole}"
    );
    assert_eq!(
        text_of(std::slice::from_ref(&whole)),
        said,
        "the same reply, whole"
    );
    assert_eq!(whole["candidates"][0]["finishReason"], "STOP");
    gw.stop().await;

    // Gemini rate-limited: Anthropic answers, in Gemini's chunks.
    let gw = Gw::start(&["gemini=rate_limit:retry_after=30s"]).await;
    let response = gw.post("streamGenerateContent?alt=sse", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-breakerbox-provider"], "anthropic");
    let text = response.text().await.unwrap();
    assert!(!text.contains("promptTokensDetails"), "translated: {text}");
    let chunks = frames(&text);
    assert!(text_of(&chunks).split_whitespace().count() > 3, "{text}");
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["promptTokenCount"].as_u64().unwrap() > 0);
    let whole: Value = gw
        .post("generateContent", &body)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        whole["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );

    // A function call from Anthropic comes back as a Gemini functionCall, whole.
    let mut tools = weather_request();
    let whole: Value = gw
        .post("generateContent", &tools)
        .await
        .json()
        .await
        .unwrap();
    let parts = whole["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .clone();
    let call = parts
        .iter()
        .find_map(|p| p.get("functionCall"))
        .unwrap_or_else(|| panic!("{whole}"));
    assert_eq!(call["name"], "get_weather");
    assert!(call["args"]["city"].is_string(), "{call}");
    // Its result goes back, and the model answers in words.
    let contents = tools["contents"].as_array_mut().unwrap();
    contents.push(json!({"role": "model", "parts": parts}));
    contents.push(json!({"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]}));
    let response = gw.post("streamGenerateContent?alt=sse", &tools).await;
    assert_eq!(response.status(), 200);
    let chunks = frames(&response.text().await.unwrap());
    assert!(!text_of(&chunks).is_empty());
    gw.stop().await;

    // Every target down: Google's error shape, the retry in a RetryInfo detail.
    let gw = Gw::start(&[
        "gemini=rate_limit:retry_after=5s",
        "anthropic=rate_limit:retry_after=5s",
    ])
    .await;
    let response = gw.post("streamGenerateContent?alt=sse", &body).await;
    assert_eq!(response.status(), 429);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED", "{error}");
    assert_eq!(error["error"]["code"], 429);
    assert_eq!(error["error"]["details"][0]["retryDelay"], "5s", "{error}");
    // A bad body: a 400 INVALID_ARGUMENT.
    let response = gw.post("generateContent", &json!({"contents": "no"})).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_client_is_answered_by_gemini_when_anthropic_fails() {
    let gw = Gw::start(&["anthropic=overloaded"]).await;
    let response = sim::client()
        .post(format!("{}/v1/messages", gw.base))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-via-gemini",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-breakerbox-provider"], "gemini");
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["content"][0]["text"].as_str().unwrap().len() > 10);
    assert!(message["usage"]["input_tokens"].as_u64().unwrap() > 0);
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The client against a hand-written upstream: what it sends, and what it never lets out
// ---------------------------------------------------------------------------------------------

const KEY: &str = "AIzaSy-gemini-secret-key-0123456789";

fn client_for(base_url: String) -> std::sync::Arc<dyn breakerbox::provider::Provider> {
    let mut config =
        breakerbox::provider::ProviderConfig::new("gemini", Protocol::Gemini, base_url);
    config.api_key = breakerbox::provider::ApiKey::new(KEY);
    config.model = "gemini-3.5-flash".into();
    config.secrets = breakerbox::secret::Secrets::new([KEY]);
    breakerbox::provider::build(config).unwrap()
}

async fn collect(
    provider: &dyn breakerbox::provider::Provider,
) -> (
    Vec<StreamEvent>,
    Option<breakerbox::provider::ProviderError>,
) {
    let mut stream = provider.stream(Request::prompt("hi"));
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

#[tokio::test]
async fn the_client_sends_the_key_in_its_header_and_never_lets_it_out() {
    use crate::support::provider::{Reply, TestServer};
    // A stream that echoes the key in its text.
    let body = format!(
        "data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"your key is {KEY}\"}}]}}}}],\"responseId\":\"r\"}}\r\n\r\n\
         data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"\"}}]}},\"finishReason\":\"STOP\"}}],\"usageMetadata\":{{\"promptTokenCount\":3,\"candidatesTokenCount\":4}}}}\r\n\r\n"
    );
    let mut server = TestServer::start(Reply::stream(body.as_bytes())).await;
    let (events, err) = collect(client_for(server.url()).as_ref()).await;
    assert!(err.is_none(), "{err:?}");
    let request = server.request().await;
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(request.headers["x-goog-api-key"], KEY);
    assert!(!request.headers.contains_key("authorization"));
    assert_eq!(request.body["contents"][0]["parts"][0]["text"], "hi");
    assert_eq!(request.body["generationConfig"]["maxOutputTokens"], 1024);
    assert!(
        request.body.get("model").is_none(),
        "the model is in the path"
    );
    let shown = format!("{events:?}");
    assert!(
        !shown.contains(KEY) && shown.contains("your key is"),
        "{shown}"
    );

    // An error that echoes the key: redacted, and its RetryInfo read.
    let error = format!(
        r#"{{"error":{{"code":429,"message":"quota for key {KEY} exhausted","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}}]}}}}"#
    );
    let server = TestServer::start(Reply::error(429, vec![], &error)).await;
    let (_, err) = collect(client_for(server.url()).as_ref()).await;
    let err = err.expect("a 429");
    assert_eq!(err.class, breakerbox::provider::ErrorClass::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(12)));
    assert_eq!(err.error_type.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert!(!err.to_string().contains(KEY), "{err}");
}
