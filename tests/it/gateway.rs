//! The gateway over real sockets: both protocols in and out, streaming and not, across protocols,
//! every fault kind, unknown models, client disconnects, the token rules, `/events`, `/control` and
//! `/metrics`. The official clients are checked against it in `sdk_gateway`.

use crate::support::demo_config::paced_sim;
use breakerbox::config::Config;
use breakerbox::gateway::{self, server::Running};
use breakerbox::sim::Simulator;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// No retries (so a fault fails over at once) and short timeouts, for the paced simulated providers.
const FAST: &str = r#"
[timeouts]
headers = "400ms"
first_event = "400ms"
idle = "300ms"

[retry]
max_retries = 0
min_delay = "5ms"
max_delay = "10ms"

[sim]
seed = 7
"#;

struct Gw {
    running: Option<Running>,
    sim: Arc<Simulator>,
    base: String,
    http: reqwest::Client,
}

impl Gw {
    async fn start(extra: &str, faults: &[&str], token: Option<&str>) -> Gw {
        let config =
            Config::parse(&format!("{FAST}{}\n{extra}", paced_sim()), "test.toml").unwrap();
        let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
        let (running, sim, _bus) = gateway::start_demo(&config, &faults, token.map(String::from))
            .await
            .unwrap();
        let base = format!("http://{}", running.addr);
        Gw {
            running: Some(running),
            sim,
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn control(&self, body: Value) -> Value {
        self.post("/control", body).await.json().await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

fn openai_body(stream: bool) -> Value {
    json!({"model": "default", "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

fn anthropic_body(stream: bool) -> Value {
    json!({"model": "default", "max_tokens": 200, "stream": stream,
           "messages": [{"role": "user", "content": "Why is the sky blue?"}]})
}

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

fn weather_tool_anthropic() -> Value {
    json!([{"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

/// SSE frames as (event name, data JSON or the raw text).
fn frames(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
            (name, value)
        })
        .collect()
}

/// The text of an Anthropic stream, and whether it ended cleanly (`message_stop`) or with an
/// `error` event.
fn anthropic_stream_text(frames: &[(String, Value)]) -> (String, &'static str) {
    let mut text = String::new();
    let mut end = "none";
    for (name, data) in frames {
        match name.as_str() {
            "content_block_delta" => {
                if let Some(t) = data["delta"]["text"].as_str() {
                    text.push_str(t);
                }
            }
            "message_stop" => end = "clean",
            "error" => end = "error",
            _ => {}
        }
    }
    (text, end)
}

/// What a client saw: a complete answer from a model, an HTTP error, or a stream that broke after
/// some text.
#[derive(Debug, PartialEq)]
enum Seen {
    Answer(String),
    Status(u16),
    BrokenAfterText,
}

async fn whole_openai(gw: &Gw) -> Seen {
    let response = gw.post("/v1/chat/completions", openai_body(false)).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    if status != 200 {
        assert!(body["error"]["message"].is_string(), "{body}");
        return Seen::Status(status);
    }
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(
        !body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    Seen::Answer(body["model"].as_str().unwrap().to_string())
}

async fn live_anthropic(gw: &Gw) -> Seen {
    let response = gw.post("/v1/messages", anthropic_body(true)).await;
    let status = response.status().as_u16();
    if status != 200 {
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error", "{body}");
        return Seen::Status(status);
    }
    let text = response.text().await.unwrap();
    let frames = frames(&text);
    let (reply, end) = anthropic_stream_text(&frames);
    match end {
        "clean" => {
            assert!(!reply.is_empty());
            Seen::Answer(
                frames[0].1["message"]["model"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        }
        "error" => {
            assert!(
                !reply.is_empty(),
                "an error before any text has a status instead"
            );
            Seen::BrokenAfterText
        }
        _ => panic!("a stream that just stops is never acceptable: {text}"),
    }
}

#[tokio::test]
async fn both_protocols_answer_streaming_and_not() {
    let gw = Gw::start("", &[], None).await;

    // OpenAI in, not streaming; the default chain answers from anthropic.
    assert_eq!(
        whole_openai(&gw).await,
        Seen::Answer("claude-sonnet-5-5".into())
    );

    // OpenAI in, streaming, with usage.
    let response = gw.post("/v1/chat/completions", openai_body(true)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(response.headers().contains_key("x-request-id"));
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let chunks: Vec<Value> = frames(&text)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v.is_object())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let reply: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(reply.len() > 20);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );

    // Anthropic in, not streaming.
    let response = gw.post("/v1/messages", anthropic_body(false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-sonnet-5-5");
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // Anthropic in, streaming.
    assert_eq!(
        live_anthropic(&gw).await,
        Seen::Answer("claude-sonnet-5-5".into())
    );
    gw.stop().await;
}

#[tokio::test]
async fn across_protocols_the_answer_names_the_model_that_answered_and_its_usage() {
    let gw = Gw::start("", &[], None).await;
    let tripped = gw
        .control(json!({"action": "trip", "provider": "anthropic"}))
        .await;
    assert_eq!(tripped["ok"], true, "{tripped}");

    // An Anthropic client answered by OpenAI.
    let response = gw.post("/v1/messages", anthropic_body(false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "gpt-6.2-sol");
    assert_eq!(body["content"][0]["type"], "text");
    assert_eq!(body["stop_reason"], "end_turn");
    let usage = &body["usage"];
    assert!(
        usage["input_tokens"].as_u64().unwrap() > 0 && usage["output_tokens"].as_u64().unwrap() > 0
    );

    // Its tool call, streamed: a tool_use block with the arguments as input_json_delta.
    let mut request = anthropic_body(true);
    request["tools"] = weather_tool_anthropic();
    request["messages"] = json!([{"role": "user", "content": "What's the weather in Paris?"}]);
    let text = gw
        .post("/v1/messages", request.clone())
        .await
        .text()
        .await
        .unwrap();
    let sse = frames(&text);
    let start = sse
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use block: {text}"));
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    let args: String = sse
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    let args: Value = serde_json::from_str(&args).unwrap();
    assert!(args["city"].is_string(), "{args}");
    let delta = sse.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");

    // Not streamed: the input is parsed JSON.
    request["stream"] = json!(false);
    let body: Value = gw.post("/v1/messages", request).await.json().await.unwrap();
    let block = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert!(block["input"]["city"].is_string(), "{body}");
    assert!(block["id"].as_str().unwrap().len() > 3);

    // The other way: an OpenAI client answered by Anthropic, with a tool call.
    gw.control(json!({"action": "reset", "provider": "anthropic"}))
        .await;
    let mut request = openai_body(false);
    request["tools"] = weather_tool_openai();
    request["messages"] = json!([{"role": "user", "content": "What's the weather in Paris?"}]);
    let body: Value = gw
        .post("/v1/chat/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["model"], "claude-sonnet-5-5");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string());
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // Streamed: tool_calls deltas numbered from 0, arguments concatenating to JSON.
    request["stream"] = json!(true);
    let text = gw
        .post("/v1/chat/completions", request)
        .await
        .text()
        .await
        .unwrap();
    let chunks: Vec<Value> = frames(&text).into_iter().map(|(_, v)| v).collect();
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert!(serde_json::from_str::<Value>(&args).unwrap()["city"].is_string());
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["index"] == 0)
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    gw.stop().await;
}

/// Every fault kind on the primary, seen by a non-streaming OpenAI client and a live streaming
/// Anthropic client. Before the first content a failover is invisible; after it, a live stream
/// ends in an error (openai cannot continue anthropic's text); a request fault reaches the client
/// with its status.
#[tokio::test]
async fn every_fault_kind_through_the_gateway() {
    use Seen::*;
    let openai = || Answer("gpt-6.2-sol".to_string());
    let anthropic = || Answer("claude-sonnet-5-5".to_string());
    let cases: Vec<(&str, Seen, Seen)> = vec![
        ("none", anthropic(), anthropic()),
        ("rate_limit:retry_after=1s", openai(), openai()),
        ("quota", openai(), openai()),
        ("overloaded", openai(), openai()),
        ("server_error", openai(), openai()),
        ("auth", openai(), openai()),
        ("connect_refused", openai(), openai()),
        ("reset", openai(), openai()),
        ("no_response", openai(), openai()),
        ("slow_first_event:delay=5s", openai(), openai()),
        ("flap:down=1m", openai(), openai()),
        ("latency:first=20ms,token=1ms", anthropic(), anthropic()),
        ("bad_request", Status(400), Status(400)),
        ("context_length", Status(400), Status(400)),
        ("content_filter", Status(400), Status(400)),
        ("stall:after=3", openai(), BrokenAfterText),
        ("stream_cut:after=3", openai(), BrokenAfterText),
        ("mid_stream_error:after=3", openai(), BrokenAfterText),
        ("malformed:after=3", openai(), BrokenAfterText),
        // A complete reply without its end marker is a quirk, not a failure (`faults`).
        ("no_done", anthropic(), anthropic()),
    ];
    let mut wrong = Vec::new();
    for (fault, whole, live) in cases {
        let gw = Gw::start("", &[&format!("anthropic={fault}")], None).await;
        let seen_whole = whole_openai(&gw).await;
        let seen_live = live_anthropic(&gw).await;
        if seen_whole != whole || seen_live != live {
            wrong.push(format!(
                "{fault}: whole {seen_whole:?} (want {whole:?}), live {seen_live:?} (want {live:?})"
            ));
        }
        gw.stop().await;
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_buffered_route_hides_a_mid_stream_failover() {
    let extra = r#"
[[routes]]
model = "default"
mode = "buffered"
"#;
    let gw = Gw::start(extra, &["anthropic=stream_cut:after=3"], None).await;
    assert_eq!(
        live_anthropic(&gw).await,
        Seen::Answer("gpt-6.2-sol".into())
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_live_route_continues_on_a_target_that_accepts_the_prefill() {
    let extra = r#"
[[sim.providers]]
name = "claude-backup"
protocol = "anthropic"
model = "claude-haiku-4-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[chains]]
name = "default"
targets = ["anthropic", "claude-backup"]
"#;
    let gw = Gw::start(extra, &["anthropic=stream_cut:after=4"], None).await;
    let text = gw
        .post("/v1/messages", anthropic_body(true))
        .await
        .text()
        .await
        .unwrap();
    let (reply, end) = anthropic_stream_text(&frames(&text));
    assert_eq!(end, "clean", "{text}");
    // The first four words came from anthropic, the rest from the backup, continuing them.
    let words = reply.split_whitespace().count();
    assert!(words > 8, "{reply}");
    let log = gw.sim.recent_requests(10);
    assert!(log.iter().any(|r| r.provider == "claude-backup"));
    gw.stop().await;
}

#[tokio::test]
async fn when_every_target_fails_the_client_gets_the_most_informative_error() {
    let gw = Gw::start(
        "",
        &[
            "anthropic=rate_limit:retry_after=3s",
            "openai=connect_refused",
        ],
        None,
    )
    .await;
    let response = gw.post("/v1/messages", anthropic_body(false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let response = gw.post("/v1/chat/completions", openai_body(true)).await;
    assert_eq!(
        response.status(),
        429,
        "a stream that never started gets a status"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    gw.stop().await;
}

#[tokio::test]
async fn an_unknown_model_gets_a_404_naming_the_routes_in_the_callers_protocol() {
    let extra = r#"
[[routes]]
model = "default"

[[routes]]
model = "fast"
chain = "default"
"#;
    let gw = Gw::start(extra, &[], None).await;
    let mut body = openai_body(false);
    body["model"] = json!("gpt-4o");
    let response = gw.post("/v1/chat/completions", body).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gpt-4o") && message.contains("default, fast"),
        "{message}"
    );

    let mut body = anthropic_body(true);
    body["model"] = json!("claude-opus-4");
    let response = gw.post("/v1/messages", body).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");

    // A body that is not a request gets a 400 naming the field.
    let response = gw
        .post(
            "/v1/messages",
            json!({"model": "default", "messages": "hi"}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages")
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_request() {
    use futures::StreamExt;
    let gw = Gw::start("", &["anthropic=latency:first=0ms,token=50ms"], None).await;
    let events = gw
        .http
        .get(format!("{}/events", gw.base))
        .send()
        .await
        .unwrap();
    let mut events = events.bytes_stream();

    // Streaming: read the first bytes, then hang up.
    let response = gw.post("/v1/messages", anthropic_body(true)).await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(body);

    // Not streaming: hang up before the answer.
    let client = gw.http.clone();
    let url = format!("{}/v1/chat/completions", gw.base);
    let pending =
        tokio::spawn(async move { client.post(url).json(&openai_body(false)).send().await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    pending.abort();

    // Both requests end as cancelled, and the simulator saw both clients go.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.matches("\"class\":\"cancelled\"").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("both requests end as cancelled")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gone = gw
        .sim
        .recent_requests(10)
        .iter()
        .filter(|r| r.outcome == "client_gone")
        .count();
    assert_eq!(gone, 2, "{:?}", gw.sim.recent_requests(10));
    gw.stop().await;
}

#[tokio::test]
async fn with_a_token_the_operator_endpoints_and_v1_demand_it() {
    let token = "s3cret-gateway-token";
    let gw = Gw::start("", &[], Some(token)).await;
    let get = |path: &str, auth: Option<&str>| {
        let mut request = gw.http.get(format!("{}{path}", gw.base));
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        request.send()
    };
    assert_eq!(get("/events", None).await.unwrap().status(), 401);
    assert_eq!(
        get("/events", Some("Bearer wrong")).await.unwrap().status(),
        401
    );
    assert_eq!(
        get("/events", Some(&format!("Bearer {token}")))
            .await
            .unwrap()
            .status(),
        200
    );
    let control = |auth: Option<String>| {
        let mut request = gw
            .http
            .post(format!("{}/control", gw.base))
            .json(&json!({"action": "trip", "provider": "openai"}));
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        request.send()
    };
    let refused = control(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(!refused.text().await.unwrap().contains(token));
    assert_eq!(
        control(Some(format!("Bearer {token}")))
            .await
            .unwrap()
            .status(),
        200
    );

    // /v1 wants the token as the API key...
    let response = gw.post("/v1/messages", anthropic_body(false)).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let ok = gw
        .http
        .post(format!("{}/v1/messages", gw.base))
        .header("x-api-key", token)
        .json(&anthropic_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // ...or in x-breakerbox-token.
    let ok = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.base))
        .header("x-breakerbox-token", token)
        .json(&openai_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
    assert_eq!(get("/metrics", None).await.unwrap().status(), 200);
    gw.stop().await;
}

#[test]
fn serve_refuses_a_non_loopback_address_without_a_token() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"))
        .args(["serve", "--demo", "--headless", "--listen", "0.0.0.0:0"])
        .env_remove("BREAKERBOX_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{err}"
    );
    assert!(err.lines().count() == 1, "one clear line: {err}");
}

#[tokio::test]
async fn control_trips_and_resets_and_events_show_it() {
    use futures::StreamExt;
    let gw = Gw::start("", &[], None).await;
    let events = gw
        .http
        .get(format!("{}/events", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut events = events.bytes_stream();

    let answer = gw
        .control(json!({"action": "trip", "provider": "anthropic"}))
        .await;
    assert_eq!(
        answer,
        json!({"ok": true, "message": "anthropic: trip (force open)"})
    );
    // The next request skips anthropic.
    assert_eq!(whole_openai(&gw).await, Seen::Answer("gpt-6.2-sol".into()));
    let bad = gw
        .post("/control", json!({"action": "trip", "provider": "nobody"}))
        .await;
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert!(bad["error"].as_str().unwrap().contains("anthropic, openai"));
    let fault = gw
        .control(json!({"action": "set_fault", "provider": "openai", "fault": "overloaded"}))
        .await;
    assert_eq!(fault["ok"], true);
    let bad_fault = gw
        .control(json!({"action": "set_fault", "provider": "openai", "fault": "gremlins"}))
        .await;
    assert_eq!(bad_fault["ok"], false);
    // The shared command type: a headless gateway has no background load to drive.
    let load = gw
        .control(json!({"action": "load", "change": "toggle"}))
        .await;
    assert_eq!(
        load,
        json!({"ok": false, "error": "no background load here"})
    );

    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(seen.contains("attempt_skipped") && seen.contains("\"action\":\"set_fault\"")) {
        let chunk = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let all = frames(&seen);
    assert_eq!(
        all[0].0, "session_started",
        "a watcher starts with the session"
    );
    assert!(
        all.iter()
            .any(|(n, d)| n == "breaker_changed" && d["to"] == "forced_open")
    );
    assert!(
        all.iter()
            .any(|(n, d)| n == "request_started" && d["source"] == "gateway")
    );

    // A late watcher still learns anthropic's breaker is forced open.
    let late = gw
        .http
        .get(format!("{}/events", gw.base))
        .send()
        .await
        .unwrap();
    let mut late = late.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(2), late.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let mut text = String::from_utf8_lossy(&first).to_string();
    while !text.contains("forced_open") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), late.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    gw.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_count_the_gateways_traffic() {
    let gw = Gw::start("", &["anthropic=overloaded"], None).await;
    assert_eq!(whole_openai(&gw).await, Seen::Answer("gpt-6.2-sol".into()));
    // The metrics fold runs beside the request; give it a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = gw
        .http
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    // Every sample line is `name{labels} value` or `name value`, after its HELP and TYPE.
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(
            text.contains(&format!("# TYPE {name} "))
                || text.contains(&format!(
                    "# TYPE {} ",
                    name.trim_end_matches("_bucket")
                        .trim_end_matches("_sum")
                        .trim_end_matches("_count")
                )),
            "{name} has no TYPE line"
        );
    }
    assert!(
        text.contains(r#"breakerbox_breaker_state{provider="anthropic",state="closed"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"source="gateway""#), "{text}");
    assert!(text.contains(r#"class="overloaded""#), "{text}");
    gw.stop().await;
}

/// A one-route upstream speaking Anthropic's stream, which notes the key it was sent.
async fn key_noting_upstream() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::HeaderMap;
    let keys: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let noted = Arc::clone(&keys);
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(move |headers: HeaderMap| {
            let noted = Arc::clone(&noted);
            async move {
                let key = headers
                    .get("x-api-key")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                noted.lock().unwrap().push(key);
                let body = [
                    r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#,
                    r#"event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                    r#"event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}"#,
                    r#"event: content_block_stop
data: {"type":"content_block_stop","index":0}"#,
                    r#"event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"#,
                    r#"event: message_stop
data: {"type":"message_stop"}"#,
                ]
                .join("\n\n")
                    + "\n\n";
                ([("content-type", "text/event-stream")], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), keys)
}

#[tokio::test]
async fn the_clients_key_goes_upstream_only_on_a_passthrough_route() {
    let (upstream, keys) = key_noting_upstream().await;
    let config = Config::parse(
        &format!(
            r#"
[[providers]]
name = "anthropic"
protocol = "anthropic"
model = "claude-sonnet-4-5"
base_url = "{upstream}"

[[routes]]
model = "default"

[[routes]]
model = "mine"
passthrough = true
"#
        ),
        "test.toml",
    )
    .unwrap();
    let env = |var: &str| (var == "ANTHROPIC_API_KEY").then(|| "gateway-key".to_string());
    let common = breakerbox::cli::CommonArgs::default();
    let (running, _, _) = gateway::start(&common, &config, &env, None).await.unwrap();
    let http = reqwest::Client::new();
    let send = |model: &str| {
        let mut body = anthropic_body(false);
        body["model"] = json!(model);
        http.post(format!("http://{}/v1/messages", running.addr))
            .header("x-api-key", "client-key")
            .json(&body)
            .send()
    };
    assert_eq!(send("default").await.unwrap().status(), 200);
    assert_eq!(send("mine").await.unwrap().status(), 200);
    assert_eq!(
        *keys.lock().unwrap(),
        vec!["gateway-key".to_string(), "client-key".to_string()]
    );
    running.stop().await;
}

#[tokio::test]
async fn with_every_breaker_open_the_client_is_told_when_to_come_back() {
    let gw = Gw::start("", &["anthropic=overloaded", "openai=overloaded"], None).await;
    // Five failures in a row open each breaker (the default threshold).
    for _ in 0..5 {
        let response = gw.post("/v1/messages", anthropic_body(false)).await;
        assert_eq!(response.status(), 529);
    }
    let response = gw.post("/v1/messages", anthropic_body(false)).await;
    assert_eq!(response.status(), 503);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("every provider is unavailable"),
        "{message}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn stopping_the_gateway_ends_its_event_streams() {
    use futures::StreamExt;
    let gw = Gw::start("", &[], None).await;
    let events = gw
        .http
        .get(format!("{}/events", gw.base))
        .send()
        .await
        .unwrap();
    let mut events = events.bytes_stream();
    // The session's first event has arrived: the watcher is connected.
    events.next().await.unwrap().unwrap();
    let stopping = tokio::spawn(gw.stop());
    // The stream ends properly (the body is complete), not by the connection being cut after
    // the shutdown grace period.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = events.next().await {
            chunk?;
        }
        Ok::<(), reqwest::Error>(())
    })
    .await
    .expect("the stream ends with the gateway");
    assert!(ended.is_ok(), "{ended:?}");
    stopping.await.unwrap();
}
