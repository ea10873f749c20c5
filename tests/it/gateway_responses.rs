//! The gateway's Responses API (`/v1/responses`) over real sockets, answered by targets that speak
//! Anthropic Messages and Chat Completions: streaming and not, function and custom tools with
//! their round trips, `max_output_tokens`, a cut mid-stream, errors before the stream, Codex's
//! WebSocket probe, and what reaches a target (a capturing upstream). The official clients are
//! checked against it in `sdk_gateway`.

use crate::support::demo_config::FAST_SIM;
use crate::support::upstream::Upstream;
use breakerbox::cli::CommonArgs;
use breakerbox::config::Config;
use breakerbox::gateway::{self, server::Running};
use serde_json::{Value, json};
use std::sync::Arc;

/// No retries and short timeouts, for the fast simulated providers (anthropic first, then openai).
const FAST: &str = r#"
[timeouts]
headers = "400ms"
first_event = "400ms"
idle = "300ms"

[retry]
max_retries = 0

[sim]
seed = 3
"#;

struct Gw {
    running: Option<Running>,
    base: String,
    http: reqwest::Client,
}

impl Gw {
    async fn demo(faults: &[&str]) -> Gw {
        let config = Config::parse(&format!("{FAST}{FAST_SIM}"), "test.toml").unwrap();
        let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
        let (running, _sim, _bus) = gateway::start_demo(&config, &faults, None).await.unwrap();
        Gw::on(running)
    }

    fn on(running: Running) -> Gw {
        Gw {
            base: format!("http://{}", running.addr),
            running: Some(running),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/responses", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A non-streaming reply: 200 and the response object.
    async fn whole(&self, body: Value) -> Value {
        let response = self.post(body).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object"], "response", "{body}");
        body
    }

    /// A streamed reply's events, checked for the framing every SDK relies on.
    async fn stream(&self, mut body: Value) -> Vec<(String, Value)> {
        body["stream"] = json!(true);
        let response = self.post(body).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        events(&response.text().await.unwrap())
    }

    async fn control(&self, body: Value) {
        let reply: Value = self
            .http
            .post(format!("{}/control", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(reply["ok"], true, "{reply}");
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// SSE frames as (event, data): each `event: T` + `data: JSON` with `type` T, numbered from 0.
fn events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let mut name = String::new();
        let mut data = String::new();
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        let data: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {frame}"));
        assert_eq!(data["type"], name.as_str(), "{frame}");
        assert_eq!(data["sequence_number"], out.len() as u64, "{frame}");
        out.push((name, data));
    }
    out
}

fn kinds(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(k, _)| k.as_str()).collect()
}

/// The streamed text, and the terminal event's response object.
fn streamed(events: &[(String, Value)]) -> (String, &str, &Value) {
    let text: String = events
        .iter()
        .filter(|(k, _)| k == "response.output_text.delta")
        .filter_map(|(_, d)| d["delta"].as_str())
        .collect();
    let (kind, last) = events.last().expect("some events");
    (text, kind.as_str(), &last["response"])
}

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}])
}

#[tokio::test]
async fn both_targets_answer_streamed_and_whole() {
    let gw = Gw::demo(&[]).await;
    for (target, model) in [("anthropic", "claude-sonnet-5-5"), ("openai", "gpt-5")] {
        if target == "openai" {
            gw.control(json!({"action": "trip", "provider": "anthropic"}))
                .await;
        }
        let events = gw
            .stream(json!({"model": "gpt-5", "input": "Why is the sky blue?"}))
            .await;
        let kinds = kinds(&events);
        assert_eq!(
            kinds[..4],
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added"
            ],
            "{target}"
        );
        assert_eq!(
            kinds[kinds.len() - 4..],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ],
            "{target}"
        );
        let (text, _, response) = streamed(&events);
        assert!(!text.trim().is_empty());
        assert_eq!(response["model"], model, "the model that answered");
        assert_eq!(events[0].1["response"]["model"], model);
        assert_eq!(response["status"], "completed");
        assert_eq!(response["output"][0]["content"][0]["text"], text.as_str());
        let usage = &response["usage"];
        assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
        assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(
                usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
            )
        );

        let whole = gw
            .whole(
                json!({"model": "gpt-5", "input": [{"role": "user", "content": "Hi"}],
                          "instructions": "Be brief.", "metadata": {"k": "v"}}),
            )
            .await;
        assert_eq!(whole["model"], model, "{target}");
        assert_eq!(whole["status"], "completed");
        assert!(whole["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(whole["instructions"], "Be brief.", "echoed");
        assert_eq!(whole["metadata"], json!({"k": "v"}), "echoed");
        let item = &whole["output"][0];
        assert_eq!(
            (&item["type"], &item["role"]),
            (&json!("message"), &json!("assistant"))
        );
        assert!(item["id"].as_str().unwrap().starts_with("msg_"));
        assert!(!item["content"][0]["text"].as_str().unwrap().is_empty());
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_function_call_and_its_output_make_a_round_trip_on_both_targets() {
    let gw = Gw::demo(&[]).await;
    for target in ["anthropic", "openai"] {
        if target == "openai" {
            gw.control(json!({"action": "trip", "provider": "anthropic"}))
                .await;
        }
        let ask = json!([{"role": "user", "content": "What's the weather in Paris?"}]);
        let events = gw
            .stream(json!({"model": "default", "input": ask, "tools": weather_tool()}))
            .await;
        let (_, end, response) = streamed(&events);
        assert_eq!(end, "response.completed", "{target}");
        let output = response["output"].as_array().unwrap();
        let call = output
            .iter()
            .find(|i| i["type"] == "function_call")
            .unwrap_or_else(|| panic!("{target}: no call in {output:?}"));
        assert_eq!(call["name"], "get_weather");
        assert!(call["id"].as_str().unwrap().starts_with("fc_"));
        let args: String = events
            .iter()
            .filter(|(k, _)| k == "response.function_call_arguments.delta")
            .filter_map(|(_, d)| d["delta"].as_str())
            .collect();
        assert_eq!(
            call["arguments"],
            args.as_str(),
            "the deltas make the arguments"
        );
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert!(parsed["city"].is_string(), "{parsed}");

        // The next turn: the call and its output, as an agent sends them back.
        let mut input = ask.as_array().unwrap().clone();
        input.extend(output.iter().cloned());
        input.push(
            json!({"type": "function_call_output", "call_id": call["call_id"],
                          "output": "Sunny, 21 °C"}),
        );
        let whole = gw
            .whole(json!({"model": "default", "input": input, "tools": weather_tool()}))
            .await;
        let output = whole["output"].as_array().unwrap();
        assert!(
            output.iter().all(|i| i["type"] == "message"),
            "{target}: answers in words after the result: {output:?}"
        );
        assert!(!output[0]["content"][0]["text"].as_str().unwrap().is_empty());
    }
    gw.stop().await;
}

#[tokio::test]
async fn custom_tools_come_back_as_custom_tool_calls() {
    let gw = Gw::demo(&[]).await;
    let tools = json!([{"type": "custom", "name": "apply_patch", "description": "Edit files.",
                        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]);
    let ask = json!([{"role": "user", "content": "Fix the bug."}]);
    let events = gw
        .stream(json!({"model": "default", "input": ask, "tools": tools}))
        .await;
    let (_, _, response) = streamed(&events);
    let call = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "custom_tool_call")
        .unwrap_or_else(|| panic!("no custom call: {response}"))
        .clone();
    assert_eq!(call["name"], "apply_patch");
    let input = call["input"].as_str().unwrap();
    assert!(
        !input.is_empty() && !input.starts_with('{'),
        "free text: {input}"
    );
    let done = events
        .iter()
        .find(|(k, _)| k == "response.custom_tool_call_input.done")
        .unwrap();
    assert_eq!(done.1["input"], input);

    let input = json!([ask[0], call, {"type": "custom_tool_call_output",
                                      "call_id": call["call_id"], "output": "Done!"}]);
    let whole = gw
        .whole(json!({"model": "default", "input": input, "tools": tools}))
        .await;
    assert_eq!(whole["output"][0]["type"], "message", "{whole}");
    gw.stop().await;
}

#[tokio::test]
async fn max_output_tokens_ends_incomplete() {
    let gw = Gw::demo(&[]).await;
    let body =
        json!({"model": "default", "input": "Tell me a long story.", "max_output_tokens": 3});
    let events = gw.stream(body.clone()).await;
    let (text, end, response) = streamed(&events);
    assert_eq!(end, "response.incomplete");
    assert!(!kinds(&events).contains(&"response.completed"));
    assert_eq!(
        response["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(text.split_whitespace().count(), 3, "{text}");
    let whole = gw.whole(body).await;
    assert_eq!(whole["status"], "incomplete");
    assert_eq!(whole["incomplete_details"]["reason"], "max_output_tokens");
    gw.stop().await;
}

#[tokio::test]
async fn a_cut_after_text_reached_the_client_is_response_failed_never_completed() {
    let gw = Gw::demo(&["anthropic=stream_cut:after=3"]).await;
    let events = gw
        .stream(json!({"model": "default", "input": "Why is the sky blue?"}))
        .await;
    let (text, end, response) = streamed(&events);
    assert!(!text.is_empty(), "some text came first");
    assert_eq!(end, "response.failed", "{:?}", kinds(&events));
    assert!(!kinds(&events).contains(&"response.completed"));
    assert_eq!(response["status"], "failed");
    assert!(response["error"]["code"].is_string(), "{response}");
    assert!(!response["error"]["message"].as_str().unwrap().is_empty());

    // Not streamed, the same fault fails over invisibly.
    let whole = gw
        .whole(json!({"model": "default", "input": "Why is the sky blue?"}))
        .await;
    assert_eq!(
        (&whole["status"], &whole["model"]),
        (&json!("completed"), &json!("gpt-6.2-sol"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn errors_before_the_stream_are_openai_errors() {
    let gw = Gw::demo(&[
        "anthropic=rate_limit:retry_after=3s",
        "openai=rate_limit:retry_after=3s",
    ])
    .await;
    for stream in [true, false] {
        let response = gw
            .post(json!({"model": "default", "input": "hi", "stream": stream}))
            .await;
        assert_eq!(response.status(), 429, "stream {stream}");
        assert_eq!(response.headers()["retry-after"], "3");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    }

    let bad = |body: Value| async {
        let response = gw.post(body).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        body["error"].clone()
    };
    let error =
        bad(json!({"model": "default", "input": "hi", "previous_response_id": "resp_1"})).await;
    assert_eq!(error["param"], "previous_response_id");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("stored at OpenAI and cannot cross to another provider"),
        "{error}"
    );
    let error = bad(json!({"model": "default", "input": [
        {"role": "user", "content": "hi"}, {"type": "computer_call", "id": "cu_1"}]}))
    .await;
    assert_eq!(error["param"], "input[1].type");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`computer_call`"),
        "{error}"
    );
    let error = bad(json!({"model": "default", "input": "hi", "background": true})).await;
    assert_eq!(error["param"], "background");

    // Other paths under /v1/responses are not served: a 404 in OpenAI's shape.
    for path in ["/v1/responses/resp_123", "/v1/responses/input_tokens"] {
        let response = gw
            .http
            .get(format!("{}{path}", gw.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unknown_url", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/v1/responses")
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn codex_websocket_probe_gets_426_at_once() {
    let gw = Gw::demo(&[]).await;
    let response = gw
        .http
        .get(format!("{}/v1/responses", gw.base))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        426,
        "Codex falls back to HTTP on 426 only"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upgrade_required", "{body}");
    // The same connection pool still posts.
    let whole = gw.whole(json!({"model": "default", "input": "hi"})).await;
    assert_eq!(whole["status"], "completed");
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// What reaches a target: a capturing upstream
// ---------------------------------------------------------------------------------------------

/// Claude thinking, then answering (`anthropic`); or a Chat Completions answer.
fn captured_reply(protocol: &str) -> String {
    if protocol == "anthropic" {
        let frame = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        [
            frame(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1",
                "type": "message", "role": "assistant", "model": "claude-captured", "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 20,
                          "cache_creation_input_tokens": 0}}}),
            ),
            frame(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ),
            frame(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Let me think."}}),
            ),
            frame(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "signature_delta", "signature": "sig"}}),
            ),
            frame(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            frame(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "text", "text": ""}}),
            ),
            frame(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "text_delta", "text": "Hello!"}}),
            ),
            frame(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            frame(
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": 9}}),
            ),
            frame("message_stop", json!({"type": "message_stop"})),
        ]
        .concat()
    } else {
        let chunk = |delta: Value, finish: Value| {
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                "created": 1, "model": "gpt-captured",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            )
        };
        [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Hi!"}), Value::Null),
            chunk(json!({}), json!("stop")),
            format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                "created": 1, "model": "gpt-captured", "choices": [],
                "usage": {"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32,
                          "prompt_tokens_details": {"cached_tokens": 10}}})
            ),
            "data: [DONE]\n\n".to_string(),
        ]
        .concat()
    }
}

/// A gateway whose one target (`protocol`) is the capturing upstream.
async fn capturing(protocol: &str) -> (Gw, Arc<Upstream>) {
    let (url, seen) = Upstream::start(&[captured_reply(protocol)]).await;
    let base = match protocol {
        "anthropic" => url,
        _ => format!("{url}/v1"),
    };
    let toml = format!(
        "[retry]\nmax_retries = 0\n\n\
         [[providers]]\nname = \"up\"\nprotocol = \"{protocol}\"\nmodel = \"m\"\nbase_url = \"{base}\"\n\n\
         [[chains]]\nname = \"up\"\ntargets = [\"up\"]\n\n\
         [[routes]]\nmodel = \"*\"\nchain = \"up\"\n"
    );
    let config = Config::parse(&toml, "capture.toml").unwrap();
    let env = |var: &str| var.ends_with("_API_KEY").then(|| "sk-test".to_string());
    let (running, _, _) = gateway::start(&CommonArgs::default(), &config, &env, None)
        .await
        .unwrap();
    (Gw::on(running), seen)
}

/// A conversation as Codex sends it: instructions, developer and user messages, a reasoning item,
/// a function call with its output, a custom tool and a namespaced one, and a tool OpenAI runs.
fn codex_like() -> Value {
    json!({
        "model": "gpt-5-codex", "instructions": "You are Codex.", "stream": true, "store": false,
        "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "medium"},
        "parallel_tool_calls": false, "prompt_cache_key": "conv-1",
        "tools": [
            {"type": "function", "name": "shell", "description": "Run a command.", "strict": false,
             "parameters": {"type": "object", "properties": {"command": {"type": "array",
                            "items": {"type": "string"}}}, "required": ["command"]}},
            {"type": "custom", "name": "apply_patch", "description": "Edit files.",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
            {"type": "namespace", "name": "mcp__docs__", "description": "Docs.",
             "tools": [{"type": "function", "name": "search", "description": "Search docs.",
                        "parameters": {"type": "object", "properties": {}}}]},
            {"type": "web_search", "external_web_access": false},
        ],
        "input": [
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "Sandbox: read-only."}]},
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": "List the files."}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "call_id": "call_1", "name": "shell",
             "arguments": "{\"command\":[\"ls\"]}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "README.md"},
            {"type": "message", "role": "user", "content": "Thanks."},
        ],
    })
}

#[tokio::test]
async fn an_anthropic_target_gets_the_conversation_and_its_thinking_comes_back_as_reasoning() {
    let (gw, seen) = capturing("anthropic").await;
    let events = gw.stream(codex_like()).await;
    let (text, end, response) = streamed(&events);
    assert_eq!((text.as_str(), end), ("Hello!", "response.completed"));
    assert_eq!(response["model"], "claude-captured");
    let output = response["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    assert_eq!(output[0]["summary"][0]["text"], "Let me think.");
    assert!(
        kinds(&events).contains(&"response.reasoning_summary_text.delta"),
        "{:?}",
        kinds(&events)
    );
    assert_eq!(output[1]["content"][0]["text"], "Hello!");
    let usage = &response["usage"];
    assert_eq!(
        usage["input_tokens"], 25,
        "cached tokens counted in: {usage}"
    );
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 20);

    let body = seen.seen()[0].1.clone();
    let system = body["system"].to_string();
    assert!(
        system.contains("You are Codex.") && system.contains("Sandbox: read-only."),
        "instructions and developer messages make the system prompt: {system}"
    );
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["shell", "apply_patch", "mcp__docs__search"],
        "web_search dropped"
    );
    assert_eq!(
        body["tools"][1]["input_schema"]["properties"]["input"]["type"],
        "string"
    );
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{messages:?}");
    let call = &messages[1]["content"][0];
    assert_eq!(
        (&call["type"], &call["id"], &call["input"]),
        (
            &json!("tool_use"),
            &json!("call_1"),
            &json!({"command": ["ls"]})
        )
    );
    let result = &messages[2]["content"][0];
    assert_eq!(
        (&result["type"], &result["tool_use_id"]),
        (&json!("tool_result"), &json!("call_1"))
    );
    assert!(!body.to_string().contains("gAAA"), "reasoning is dropped");
    assert_eq!(
        body["tool_choice"]["disable_parallel_tool_use"], true,
        "parallel_tool_calls: false crosses"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_chat_completions_target_gets_the_conversation() {
    let (gw, seen) = capturing("openai").await;
    let mut request = codex_like();
    request["stream"] = json!(false);
    let whole = gw.whole(request).await;
    assert_eq!(whole["model"], "gpt-captured");
    assert_eq!(whole["output"][0]["content"][0]["text"], "Hi!");
    assert_eq!(whole["usage"]["input_tokens"], 30);
    assert_eq!(whole["usage"]["input_tokens_details"]["cached_tokens"], 10);

    let body = seen.seen()[0].1.clone();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].to_string();
    assert!(system.contains("You are Codex.") && system.contains("Sandbox: read-only."));
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "user"],
        "{messages:?}"
    );
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(messages[3]["tool_call_id"], "call_1");
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shell", "apply_patch", "mcp__docs__search"]);
    assert_eq!(body["parallel_tool_calls"], false);
    gw.stop().await;
}

/// The request Codex CLI 0.171 really sent (tests/fixtures/agents): its tools come in an
/// `additional_tools` input item, a `namespace` holding a `custom` tool and functions; an
/// Anthropic target is offered every one of them.
#[tokio::test]
async fn codex_tools_offered_in_an_input_item_reach_the_target() {
    let path = format!(
        "{}/tests/fixtures/agents/codex-responses.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let captured: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body = captured.get("body").cloned().unwrap_or(captured);
    let offered: Vec<String> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "additional_tools")
        .flat_map(|i| i["tools"].as_array().unwrap().iter())
        .flat_map(|t| t["tools"].as_array().unwrap().iter())
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(offered.len() > 3, "{offered:?}");
    let (gw, seen) = capturing("anthropic").await;
    let events = gw.stream(body).await;
    assert_eq!(streamed(&events).1, "response.completed");
    let sent = seen.seen()[0].1.clone();
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), offered.len(), "{names:?}");
    for name in &offered {
        assert!(
            names.iter().any(|n| n.ends_with(name.as_str())),
            "{name} offered: {names:?}"
        );
    }
    gw.stop().await;
}
