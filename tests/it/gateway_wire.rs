//! The gateway's wire translation, checked against our own clients' parsers (which follow the real
//! wire formats, see `provider_sse`): encode our events, parse them back, compare.

use crate::support::provider::{done, normalize, start, text, tool_delta, tool_start, usage};
use breakerbox::gateway::wire::{
    AnthropicEncoder, Encode, OpenAiEncoder, anthropic_message, error_response, openai_completion,
    parse_anthropic_request, parse_openai_request,
};
use breakerbox::provider::anthropic::{AnthropicClient, AnthropicParser};
use breakerbox::provider::http::{self, Failure};
use breakerbox::provider::openai::{OpenAiClient, OpenAiParser};
use breakerbox::provider::{
    Content, ErrorClass, Phase, Protocol, ProviderConfig, ProviderError, Request, Role, StopReason,
    StreamEvent, ToolChoice, Usage,
};
use serde_json::{Value, json};
use std::time::Duration;

fn encode_anthropic(events: &[StreamEvent]) -> String {
    let mut enc = AnthropicEncoder::new("asked-model");
    let mut out: Vec<String> = events.iter().flat_map(|e| enc.event(e)).collect();
    out.extend(enc.finish());
    for frame in &out {
        assert!(
            frame.starts_with("event: ") && frame.ends_with("\n\n"),
            "{frame}"
        );
    }
    out.concat()
}

fn encode_openai(events: &[StreamEvent], include_usage: bool) -> String {
    let mut enc = OpenAiEncoder::new("asked-model", include_usage);
    let mut out: Vec<String> = events.iter().flat_map(|e| enc.event(e)).collect();
    out.extend(enc.finish());
    for frame in &out {
        assert!(
            frame.starts_with("data: ") && frame.ends_with("\n\n"),
            "{frame}"
        );
    }
    out.concat()
}

fn via_anthropic(events: &[StreamEvent]) -> Vec<StreamEvent> {
    let bytes = encode_anthropic(events);
    // Odd read sizes too: the frames must not depend on how they are cut.
    let whole = normalize(AnthropicParser::default(), bytes.as_bytes(), &[usize::MAX]).unwrap();
    let split = normalize(AnthropicParser::default(), bytes.as_bytes(), &[1, 7, 3]).unwrap();
    assert_eq!(whole, split);
    whole
}

fn via_openai(events: &[StreamEvent], include_usage: bool) -> Vec<StreamEvent> {
    let bytes = encode_openai(events, include_usage);
    let whole = normalize(OpenAiParser::default(), bytes.as_bytes(), &[usize::MAX]).unwrap();
    let split = normalize(OpenAiParser::default(), bytes.as_bytes(), &[1, 7, 3]).unwrap();
    assert_eq!(whole, split);
    whole
}

/// Sequences in Anthropic's own shape (usage right after the start, tool calls numbered as content
/// blocks), which the Anthropic encoder must reproduce exactly.
fn anthropic_shaped() -> Vec<(&'static str, Vec<StreamEvent>)> {
    vec![
        (
            "text",
            vec![
                start("msg_1", "claude-sonnet-4-5"),
                usage(11, 1, 0, 0),
                text("Hello"),
                text(" there"),
                usage(11, 6, 0, 0),
                done(StopReason::EndTurn, "end_turn"),
            ],
        ),
        (
            "text + tool call",
            vec![
                start("msg_2", "claude-sonnet-4-5"),
                usage(377, 1, 0, 0),
                text("I'll check."),
                tool_start(1, "toolu_01", "get_weather"),
                tool_delta(1, "{\"locati"),
                tool_delta(1, "on\": \"Paris\"}"),
                usage(377, 65, 0, 0),
                done(StopReason::ToolUse, "tool_use"),
            ],
        ),
        (
            "max_tokens",
            vec![
                start("msg_3", "claude-haiku-4-5"),
                usage(5, 1, 0, 0),
                text("cut sh"),
                usage(5, 2, 0, 0),
                done(StopReason::MaxTokens, "max_tokens"),
            ],
        ),
        (
            "content filter",
            vec![
                start("msg_4", "claude-opus-4-5"),
                usage(20, 1, 0, 0),
                usage(20, 0, 0, 0),
                done(StopReason::ContentFilter, "refusal"),
            ],
        ),
        (
            "cache tokens",
            vec![
                start("msg_5", "claude-sonnet-4-5"),
                usage(3, 1, 1000, 200),
                text("cached"),
                usage(3, 9, 1000, 200),
                done(StopReason::EndTurn, "end_turn"),
            ],
        ),
    ]
}

#[test]
fn anthropic_encoder_round_trips_through_our_parser() {
    for (name, events) in anthropic_shaped() {
        assert_eq!(via_anthropic(&events), events, "{name}");
    }
}

/// What OpenAI's wire forces on the same sequences:
/// - usage is reported once, at the end (only with `include_usage`); cache writes have no field, so
///   they count as plain input (`prompt_tokens` includes them, `cached_tokens` is the cache reads);
/// - tool calls are numbered 0, 1, … regardless of preceding text blocks;
/// - stop reasons go through finish_reason (`refusal` → `content_filter`, `end_turn` → `stop`, …).
fn openai_normalized(events: &[StreamEvent], include_usage: bool) -> Vec<StreamEvent> {
    let last_usage = events.iter().rev().find_map(|e| match e {
        StreamEvent::Usage(u) => Some(*u),
        _ => None,
    });
    let mut tools: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for event in events {
        match event {
            StreamEvent::Usage(_) => {}
            StreamEvent::ToolCallStart { index, id, name } => {
                tools.push(*index);
                out.push(tool_start((tools.len() - 1) as u32, id, name));
            }
            StreamEvent::ToolCallDelta {
                index,
                partial_json,
            } => {
                let pos = tools.iter().position(|i| i == index).unwrap() as u32;
                out.push(tool_delta(pos, partial_json));
            }
            StreamEvent::Done { stop_reason, .. } => {
                if include_usage {
                    let u = last_usage.unwrap_or_default();
                    out.push(StreamEvent::Usage(Usage {
                        input_tokens: u.input_tokens + u.cache_write_tokens,
                        output_tokens: u.output_tokens,
                        cache_read_tokens: u.cache_read_tokens,
                        cache_write_tokens: 0,
                        reasoning_tokens: 0,
                    }));
                }
                let raw = match stop_reason {
                    StopReason::EndTurn => "stop",
                    StopReason::MaxTokens => "length",
                    StopReason::ToolUse => "tool_calls",
                    StopReason::ContentFilter => "content_filter",
                    other => panic!("not in these sequences: {other:?}"),
                };
                out.push(done(*stop_reason, raw));
            }
            other => out.push(other.clone()),
        }
    }
    out
}

#[test]
fn openai_encoder_round_trips_through_our_parser() {
    for (name, events) in anthropic_shaped() {
        for include_usage in [true, false] {
            assert_eq!(
                via_openai(&events, include_usage),
                openai_normalized(&events, include_usage),
                "{name} include_usage={include_usage}"
            );
        }
    }
}

#[test]
fn openai_shaped_sequences_round_trip_exactly_through_openai() {
    let events = vec![
        start("chatcmpl-abc", "gpt-4o-2024-08-06"),
        text("Let me look."),
        tool_start(0, "call_1", "get_weather"),
        tool_delta(0, "{\"city\":"),
        tool_delta(0, "\"Paris\"}"),
        tool_start(1, "call_2", "get_time"),
        tool_delta(1, "{}"),
        usage(70, 24, 30, 0),
        done(StopReason::ToolUse, "tool_calls"),
    ];
    assert_eq!(via_openai(&events, true), events);
}

#[test]
fn openai_shaped_sequences_through_anthropic() {
    // OpenAI reports usage at the end and numbers tool calls from 0: Anthropic's `message_start`
    // carries zero usage then, and the tool call becomes content block 1 after the text block.
    let events = vec![
        start("chatcmpl-abc", "gpt-4o"),
        text("Let me look."),
        tool_start(0, "call_1", "get_weather"),
        tool_delta(0, "{\"city\":\"Paris\"}"),
        usage(40, 24, 30, 0),
        done(StopReason::ToolUse, "tool_calls"),
    ];
    assert_eq!(
        via_anthropic(&events),
        vec![
            start("chatcmpl-abc", "gpt-4o"),
            usage(0, 0, 0, 0),
            text("Let me look."),
            tool_start(1, "call_1", "get_weather"),
            tool_delta(1, "{\"city\":\"Paris\"}"),
            usage(40, 24, 30, 0),
            done(StopReason::ToolUse, "tool_use"),
        ]
    );
}

#[test]
fn model_is_the_one_that_answered_and_ids_are_stable() {
    let events = [
        start("", "gpt-5-mini"),
        text("hi"),
        done(StopReason::EndTurn, "stop"),
    ];
    let frames = encode_openai(&events, true);
    let chunks: Vec<Value> = frames
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() >= 4);
    let id = chunks[0]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("chatcmpl-"));
    for chunk in &chunks {
        assert_eq!(chunk["id"], json!(id));
        assert_eq!(chunk["model"], "gpt-5-mini");
        assert_eq!(chunk["created"], chunks[0]["created"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    assert!(frames.ends_with("data: [DONE]\n\n"));

    let anthropic = encode_anthropic(&events);
    assert!(anthropic.contains("\"model\":\"gpt-5-mini\""));
    // Without a MessageStart the asked-for model is used.
    let anthropic = encode_anthropic(&[text("x"), done(StopReason::EndTurn, "end_turn")]);
    assert!(anthropic.contains("\"model\":\"asked-model\""));
}

#[test]
fn rewind_is_ignored_and_a_cut_stream_never_finishes_cleanly() {
    let mut enc = AnthropicEncoder::new("m");
    assert!(
        enc.event(&StreamEvent::Rewind { discarded_chars: 3 })
            .is_empty()
    );
    let mut frames = enc.event(&text("partial"));
    frames.extend(enc.finish());
    let bytes = frames.concat();
    assert!(!bytes.contains("message_stop"));
    let err = normalize(AnthropicParser::default(), bytes.as_bytes(), &[usize::MAX]).unwrap_err();
    assert_eq!(err.class, ErrorClass::ServerError);
    assert!(enc.finish().is_empty());

    let mut enc = OpenAiEncoder::new("m", true);
    let mut frames = enc.event(&text("partial"));
    frames.extend(enc.finish());
    let bytes = frames.concat();
    assert!(!bytes.contains("[DONE]"));
    assert!(normalize(OpenAiParser::default(), bytes.as_bytes(), &[usize::MAX]).is_err());
}

// ---- errors ----

fn provider_error(class: ErrorClass, message: &str) -> ProviderError {
    let mut err = ProviderError::new("upstream", class, Phase::MidStream, message);
    if class == ErrorClass::RateLimited {
        err.retry_after = Some(Duration::from_millis(1500));
    }
    err
}

/// Realistic provider messages; for Anthropic, `context_length` and `content_filter` are told apart
/// from `bad_request` by the message alone (they share `invalid_request_error`), as with the real API.
fn message_for(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::ContextLength => "prompt is too long: 250000 tokens > 200000 maximum",
        ErrorClass::ContentFilter => "Output blocked by content filtering policy",
        ErrorClass::Overloaded => "Overloaded",
        _ => "something went wrong upstream",
    }
}

/// The classes that survive the trip; the others all read back as `server_error` (stalled as
/// `timeout`), since neither protocol has a word for them.
const FAITHFUL: [ErrorClass; 13] = [
    ErrorClass::RateLimited,
    ErrorClass::Overloaded,
    ErrorClass::ServerError,
    ErrorClass::Timeout,
    ErrorClass::Auth,
    ErrorClass::Permission,
    ErrorClass::BadRequest,
    ErrorClass::ContextLength,
    ErrorClass::ContentFilter,
    ErrorClass::NotFound,
    ErrorClass::TooLarge,
    ErrorClass::Quota,
    ErrorClass::Conflict,
];

fn expected_back(class: ErrorClass, in_stream: bool) -> ErrorClass {
    match class {
        c if FAITHFUL.contains(&c) && !(in_stream && c == ErrorClass::Conflict) => c,
        ErrorClass::Stalled => ErrorClass::Timeout,
        // "Every provider is unavailable" is a 503, which clients read (and retry) as overloaded.
        ErrorClass::Unavailable if !in_stream => ErrorClass::Overloaded,
        _ => ErrorClass::ServerError,
    }
}

#[test]
fn in_stream_errors_classify_back_to_their_class() {
    for class in ErrorClass::ALL {
        let err = provider_error(class, message_for(class));
        let mut enc = AnthropicEncoder::new("m");
        let mut frames = enc.event(&start("msg_1", "m"));
        frames.extend(enc.event(&text("so far")));
        frames.extend(enc.error(&err));
        assert!(enc.event(&text("more")).is_empty());
        let bytes = frames.concat();
        assert!(bytes.contains("event: error\n"));
        let got =
            normalize(AnthropicParser::default(), bytes.as_bytes(), &[usize::MAX]).unwrap_err();
        assert_eq!(got.class, expected_back(class, true), "anthropic {class}");
        assert_eq!(got.message, err.message);

        let mut enc = OpenAiEncoder::new("m", true);
        let mut frames = enc.event(&text("so far"));
        frames.extend(enc.error(&err));
        frames.extend(enc.finish());
        let bytes = frames.concat();
        assert!(!bytes.contains("[DONE]"));
        let got = normalize(OpenAiParser::default(), bytes.as_bytes(), &[usize::MAX]).unwrap_err();
        assert_eq!(got.class, expected_back(class, true), "openai {class}");
        assert_eq!(got.message, err.message);
    }
}

#[test]
fn error_responses_have_the_right_status_and_classify_back() {
    for class in ErrorClass::ALL {
        let err = provider_error(class, message_for(class));
        for protocol in [Protocol::Anthropic, Protocol::Openai] {
            let (status, body, retry_after) = error_response(protocol, &err);
            let back = Failure::from_error_body(Some(status), &body.to_string());
            assert_eq!(
                back.class,
                expected_back(class, false),
                "{protocol} {class}"
            );
            assert_eq!(back.message, err.message);
            match protocol {
                Protocol::Anthropic => assert_eq!(body["type"], "error"),
                Protocol::Openai
                | Protocol::OpenaiResponses
                | Protocol::Gemini
                | Protocol::Azure => {
                    assert!(body["error"]["message"].is_string())
                }
                Protocol::Bedrock => assert!(body["message"].is_string()),
            }
            if class == ErrorClass::RateLimited {
                assert_eq!(status, 429);
                assert_eq!(retry_after.as_deref(), Some("2"));
            } else {
                assert_eq!(retry_after, None);
            }
        }
    }
    let status = |p, c| error_response(p, &provider_error(c, "x")).0;
    assert_eq!(status(Protocol::Anthropic, ErrorClass::Overloaded), 529);
    assert_eq!(status(Protocol::Openai, ErrorClass::Overloaded), 503);
    assert_eq!(status(Protocol::Openai, ErrorClass::Quota), 429);
    assert_eq!(
        error_response(Protocol::Openai, &provider_error(ErrorClass::Quota, "x")).1["error"]["code"],
        "insufficient_quota"
    );
    assert_eq!(status(Protocol::Openai, ErrorClass::Auth), 401);
    assert_eq!(status(Protocol::Anthropic, ErrorClass::TooLarge), 413);
    assert_eq!(status(Protocol::Anthropic, ErrorClass::Stalled), 504);
    assert_eq!(status(Protocol::Openai, ErrorClass::ContextLength), 400);
}

// ---- non-streaming ----

#[test]
fn whole_replies_in_both_shapes() {
    let events = vec![
        start("msg_9", "claude-sonnet-4-5"),
        usage(10, 1, 5, 2),
        text("Checking"),
        text("."),
        tool_start(1, "toolu_9", "get_weather"),
        tool_delta(1, "{\"city\":"),
        tool_delta(1, "\"Paris\"}"),
        usage(10, 30, 5, 2),
        done(StopReason::ToolUse, "tool_use"),
    ];
    let message = anthropic_message("asked", &events);
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert_eq!(message["id"], "msg_9");
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["content"],
        json!([
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
        ])
    );
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 10, "output_tokens": 30,
               "cache_creation_input_tokens": 2, "cache_read_input_tokens": 5})
    );

    let completion = openai_completion("asked", &events);
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "claude-sonnet-4-5");
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Checking.");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "toolu_9", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
    );
    assert_eq!(completion["usage"]["prompt_tokens"], 17);
    assert_eq!(completion["usage"]["completion_tokens"], 30);
    assert_eq!(completion["usage"]["total_tokens"], 47);
    assert_eq!(
        completion["usage"]["prompt_tokens_details"]["cached_tokens"],
        5
    );

    // A rewind withdraws what came before it.
    let rewound = [
        start("msg_a", "first"),
        text("abandoned"),
        StreamEvent::Rewind { discarded_chars: 9 },
        start("chatcmpl-b", "second"),
        text("kept"),
        done(StopReason::MaxTokens, "length"),
    ];
    let message = anthropic_message("asked", &rewound);
    assert_eq!(message["model"], "second");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "kept"}])
    );
    assert_eq!(message["stop_reason"], "max_tokens");
    assert_eq!(
        openai_completion("asked", &rewound)["choices"][0]["finish_reason"],
        "length"
    );
}

// ---- inbound ----

fn sample_request() -> Request {
    Request {
        model: "default".into(),
        system: Some("Be brief.".into()),
        messages: std::sync::Arc::new(vec![
            Request::prompt("Weather in Paris?").messages[0].clone(),
            breakerbox::provider::Message {
                role: Role::Assistant,
                content: vec![
                    Content::Text {
                        text: "Checking.".into(),
                    },
                    Content::ToolUse {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        input: json!({"city": "Paris"}),
                    },
                ],
            },
            breakerbox::provider::Message {
                role: Role::User,
                content: vec![
                    Content::ToolResult {
                        tool_use_id: "call_1".into(),
                        content: "18C, sunny".into(),
                        is_error: false,
                    },
                    Content::Text {
                        text: "Thanks, and Rome?".into(),
                    },
                ],
            },
        ]),
        tools: vec![breakerbox::provider::ToolDef {
            name: "get_weather".into(),
            description: "Current weather".into(),
            input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        max_tokens: 512,
        temperature: Some(0.7),
        top_p: Some(0.9),
        stop: vec!["END".into(), "STOP".into()],
        tool_choice: Some(ToolChoice::Tool {
            name: "get_weather".into(),
        }),
        credentials: None,
        as_requested: None,
        original: None,
        prefill: None,
        reasoning_effort: None,
        output_format: None,
        parallel_tool_calls: None,
        top_k: None,
        user: None,
    }
}

fn openai_body(request: &Request) -> Value {
    let config = ProviderConfig::new("openai", Protocol::Openai, "http://localhost/v1");
    let client = OpenAiClient::new(config.clone(), http::client(&config.timeouts).unwrap());
    serde_json::from_str(&client.request_body(request)).unwrap()
}

fn anthropic_body(request: &Request) -> Value {
    let config = ProviderConfig::new("anthropic", Protocol::Anthropic, "http://localhost");
    let client = AnthropicClient::new(config.clone(), http::client(&config.timeouts).unwrap());
    serde_json::from_str(&client.request_body(request)).unwrap()
}

#[test]
fn requests_round_trip_through_our_clients_bodies() {
    let request = sample_request();
    let (parsed, options) =
        parse_openai_request(openai_body(&request).to_string().as_bytes()).unwrap();
    assert_eq!(parsed, request);
    assert!(options.stream && options.include_usage);
    assert_eq!(options.model, "default");

    let (parsed, options) =
        parse_anthropic_request(anthropic_body(&request).to_string().as_bytes()).unwrap();
    assert_eq!(parsed, request);
    assert!(options.stream);

    // Every tool choice survives both ways.
    for choice in [ToolChoice::Auto, ToolChoice::None, ToolChoice::Any] {
        let request = Request {
            tool_choice: Some(choice),
            ..sample_request()
        };
        let (parsed, _) =
            parse_openai_request(openai_body(&request).to_string().as_bytes()).unwrap();
        assert_eq!(parsed, request);
        let (parsed, _) =
            parse_anthropic_request(anthropic_body(&request).to_string().as_bytes()).unwrap();
        assert_eq!(parsed, request);
    }
    let bad = parse_openai_request(br#"{"model":"m","messages":[],"tool_choice":"sometimes"}"#)
        .unwrap_err();
    assert_eq!(bad.param.as_deref(), Some("tool_choice"));
    let bad = parse_anthropic_request(br#"{"model":"m","messages":[],"stop_sequences":"END"}"#)
        .unwrap_err();
    assert_eq!(bad.param.as_deref(), Some("stop_sequences"));
}

#[test]
fn an_openai_request_crosses_to_anthropic_keeping_tools_and_results() {
    let body = json!({
        "model": "default",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "max_completion_tokens": 300,
        "stream": false
    });
    let (request, options) = parse_openai_request(body.to_string().as_bytes()).unwrap();
    assert!(!options.stream && !options.include_usage);
    assert_eq!(request.max_tokens, 300);
    let anthropic = anthropic_body(&request);
    assert_eq!(anthropic["system"], "Be brief.");
    assert_eq!(anthropic["max_tokens"], 300);
    assert_eq!(
        anthropic["tools"],
        json!([{"name": "get_weather", "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}])
    );
    assert_eq!(
        anthropic["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C", "is_error": false},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "25C", "is_error": false}
            ]}
        ])
    );
    // And back to OpenAI: the same messages.
    let (again, _) = parse_anthropic_request(anthropic.to_string().as_bytes()).unwrap();
    assert_eq!(again, request);
    let openai = openai_body(&again);
    assert_eq!(openai["messages"][3]["tool_call_id"], "call_1");
    assert_eq!(openai["messages"][4]["tool_call_id"], "call_2");
}

#[test]
fn anthropic_requests_with_blocks_and_defaults() {
    let body = json!({
        "model": "claude-x",
        "system": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                              {"type": "text", "text": "hello"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": [{"type": "text", "text": "ok"}], "is_error": true}]}
        ]
    });
    let (request, options) = parse_anthropic_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(request.system.as_deref(), Some("One.\n\nTwo."));
    assert_eq!(request.max_tokens, 4096);
    assert!(!options.stream);
    assert_eq!(request.messages[1].content.len(), 1);
    assert_eq!(
        request.messages[2].content,
        vec![Content::ToolResult {
            tool_use_id: "t1".into(),
            content: "ok".into(),
            is_error: true
        }]
    );
}

#[test]
fn inbound_errors_name_the_field() {
    let openai = |body: Value| parse_openai_request(body.to_string().as_bytes()).unwrap_err();
    let anthropic = |body: Value| parse_anthropic_request(body.to_string().as_bytes()).unwrap_err();
    let cases = [
        (openai(json!({"messages": []})), "model"),
        (openai(json!({"model": "m"})), "messages"),
        (
            openai(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]})),
            "messages[0].tool_call_id",
        ),
        (
            openai(json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]})),
            "messages[0].role",
        ),
        (
            openai(
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            openai(json!({"model": "m", "messages": [], "max_tokens": -3})),
            "max_tokens",
        ),
        (
            openai(json!({"model": "m", "messages": [], "tools": [{"type": "function"}]})),
            "tools[0].function",
        ),
        (
            openai(
                json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]}),
            ),
            "messages[0].tool_calls[0].function.name",
        ),
        (
            anthropic(json!({"model": "m", "messages": [{"role": "user"}]})),
            "messages[0].content",
        ),
        (
            anthropic(
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}),
            ),
            "messages[0].content[0].tool_use_id",
        ),
        (
            anthropic(json!({"model": "m", "messages": [], "temperature": "hot"})),
            "temperature",
        ),
    ];
    for (err, field) in cases {
        assert_eq!(err.status, 400);
        assert_eq!(err.param.as_deref(), Some(field), "{err}");
        assert!(err.message.starts_with(field), "{err}");
        let o = err.to_openai_json();
        assert_eq!(o["error"]["type"], "invalid_request_error");
        assert_eq!(o["error"]["param"], field);
        assert_eq!(o["error"]["message"], json!(err.message));
        let a = err.to_anthropic_json();
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "invalid_request_error");
        // Our own clients read these bodies as a bad request.
        for body in [o, a] {
            assert_eq!(
                Failure::from_error_body(Some(400), &body.to_string()).class,
                ErrorClass::BadRequest
            );
        }
    }
    for junk in [
        &b"not json"[..],
        b"[1,2]",
        b"",
        b"\xff\xfe",
        b"{\"model\": 3}",
    ] {
        assert_eq!(parse_openai_request(junk).unwrap_err().status, 400);
        assert_eq!(parse_anthropic_request(junk).unwrap_err().status, 400);
    }
}

/// Claude Code's shape: a block-list `system` with `cache_control`, `role: "system"` messages inside
/// the conversation, and fields breakerbox does not know (`thinking`, `context_management`,
/// `output_config`, `metadata`). Accepted: the system messages stay in place in the conversation
/// (a target with one system prompt joins them to it, in order).
#[test]
fn system_messages_inside_the_conversation_stay_in_place() {
    let body = json!({
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "fix the bug"}]},
            {"role": "system", "content": "The user switched to plan mode."},
            {"role": "assistant", "content": "Looking."},
            {"role": "system", "content": [{"type": "text", "text": "Reminder: be brief."}]},
            {"role": "user", "content": "go on"},
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "context_management": {"edits": []},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "u1"},
        "stream": true,
    });
    let (request, options) = parse_anthropic_request(body.to_string().as_bytes()).unwrap();
    assert!(options.stream);
    assert_eq!(request.system.as_deref(), Some("You are Claude Code."));
    assert_eq!(
        request.joined_system().as_deref(),
        Some("You are Claude Code.\n\nThe user switched to plan mode.\n\nReminder: be brief.")
    );
    let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::System,
            Role::Assistant,
            Role::System,
            Role::User
        ]
    );
    // Any other role is still refused, naming the roles that are accepted.
    let bad =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]});
    let err = parse_anthropic_request(bad.to_string().as_bytes()).unwrap_err();
    assert!(
        err.message.contains("expected user, assistant or system"),
        "{}",
        err.message
    );
}

/// A tool called without arguments (Anthropic streams no `input_json_delta` for `{}`) reaches an
/// OpenAI client with `arguments` that parse: `{}`, not `""`.
#[test]
fn a_tool_call_without_arguments_streams_them_as_an_empty_object() {
    let events = [
        start("msg_1", "m"),
        tool_start(0, "toolu_1", "list_files"),
        tool_start(1, "toolu_2", "read_file"),
        tool_delta(1, r#"{"path":"#),
        tool_delta(1, r#""a.rs"}"#),
        done(StopReason::ToolUse, "tool_use"),
    ];
    let bytes = encode_openai(&events, false);
    let mut arguments: std::collections::BTreeMap<u64, String> = Default::default();
    for data in bytes.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            continue; // [DONE]
        };
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let piece = call["function"]["arguments"].as_str().unwrap_or("");
            arguments
                .entry(call["index"].as_u64().unwrap())
                .or_default()
                .push_str(piece);
        }
    }
    assert_eq!(arguments.len(), 2);
    for (index, args) in &arguments {
        assert!(
            serde_json::from_str::<Value>(args).is_ok(),
            "tool {index}: {args:?}"
        );
    }
    assert_eq!(arguments[&0], "{}");
    assert_eq!(arguments[&1], r#"{"path":"a.rs"}"#);
}

/// The upstream's tool call indices may skip blocks this stream does not carry (a server tool, a
/// citation): what the Anthropic client gets is numbered 0, 1, 2, … with no gap.
#[test]
fn content_block_indices_are_contiguous_whatever_the_upstream_numbers() {
    let events = [
        start("msg_1", "m"),
        text("Let me look."),
        tool_start(3, "toolu_1", "read_file"),
        tool_delta(3, r#"{"path":"a"}"#),
        tool_start(7, "toolu_2", "list_files"),
        done(StopReason::ToolUse, "tool_use"),
    ];
    let bytes = encode_anthropic(&events);
    let mut started = Vec::new();
    for data in bytes.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let frame: Value = serde_json::from_str(data).unwrap();
        if frame["type"] == "content_block_start" {
            started.push(frame["index"].as_u64().unwrap());
        }
        if frame["type"] == "content_block_delta" || frame["type"] == "content_block_stop" {
            let index = frame["index"].as_u64().unwrap();
            assert!(
                started.contains(&index),
                "{index} was never started: {bytes}"
            );
        }
    }
    assert_eq!(started, [0, 1, 2]);
    // And it still reads back as the same calls.
    let back = via_anthropic(&events);
    let names: Vec<&str> = back
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStart { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["read_file", "list_files"]);
}

/// An OpenAI refusal (`delta.refusal`, finish `stop`) is a refusal for every client: an OpenAI
/// client reads it from `refusal` with `stop`, an Anthropic client as text with `refusal`, and the
/// engine sees the content-filter stop reason.
#[test]
fn an_openai_refusal_stays_a_refusal_in_both_protocols() {
    let upstream = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5\",",
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5\",",
        "\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I can't help \"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5\",",
        "\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"with that.\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5\",",
        "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let events = normalize(OpenAiParser::default(), upstream.as_bytes(), &[usize::MAX]).unwrap();
    let refusal: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::RefusalDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(refusal, "I can't help with that.");
    assert!(matches!(
        events.last(),
        Some(StreamEvent::Done {
            stop_reason: StopReason::ContentFilter,
            ..
        })
    ));

    // OpenAI client, streaming: `refusal` deltas and `stop`; it reads back the same.
    let bytes = encode_openai(&events, false);
    assert!(bytes.contains(r#""refusal":"I can't help ""#), "{bytes}");
    assert!(bytes.contains(r#""finish_reason":"stop""#), "{bytes}");
    assert_eq!(via_openai(&events, false), events);
    // Anthropic client, streaming: text, and the stop reason `refusal`.
    let bytes = encode_anthropic(&events);
    assert!(bytes.contains(r#""stop_reason":"refusal""#), "{bytes}");
    assert!(bytes.contains(r#""text":"with that.""#), "{bytes}");
    // Whole replies.
    let completion = openai_completion("gpt-5", &events);
    let message = &completion["choices"][0]["message"];
    assert_eq!(message["refusal"], "I can't help with that.");
    assert!(message["content"].is_null());
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    let anthropic = anthropic_message("gpt-5", &events);
    assert_eq!(anthropic["stop_reason"], "refusal");
    assert_eq!(anthropic["content"][0]["text"], "I can't help with that.");
}

/// Reasoning tokens reported by an OpenAI upstream reach an OpenAI client, streaming or not.
#[test]
fn reasoning_tokens_are_carried() {
    let upstream = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"o3\",",
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"4\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"o3\",\"choices\":[],",
        "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":70,\"total_tokens\":82,",
        "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":64}}}\n\n",
        "data: [DONE]\n\n",
    );
    let events = normalize(OpenAiParser::default(), upstream.as_bytes(), &[usize::MAX]).unwrap();
    let reported = events.iter().find_map(|e| match e {
        StreamEvent::Usage(u) => Some(u.reasoning_tokens),
        _ => None,
    });
    assert_eq!(reported, Some(64));
    let whole = openai_completion("o3", &events);
    assert_eq!(
        whole["usage"]["completion_tokens_details"]["reasoning_tokens"],
        64
    );
    let streamed = encode_openai(&events, true);
    assert!(streamed.contains(r#""reasoning_tokens":64"#), "{streamed}");
}

/// Images cross protocols: OpenAI's `image_url` (a URL or a `data:` URL) and Anthropic's `image`
/// (a `url` or a `base64` source) become each other, in both directions.
#[test]
fn images_cross_protocols_both_ways() {
    const PNG: &str = "iVBORw0KGgo=";
    let openai = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}"), "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]}]});
    let (request, _) = parse_openai_request(openai.to_string().as_bytes()).unwrap();
    let anthropic = anthropic_body(&request);
    let blocks = &anthropic["messages"][0]["content"];
    assert_eq!(
        blocks[0],
        json!({"type": "text", "text": "What is in these?"})
    );
    assert_eq!(
        blocks[1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}})
    );
    assert_eq!(
        blocks[2],
        json!({"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}})
    );
    // And back: the Anthropic request parses to the same, and OpenAI gets its parts again.
    let (again, _) = parse_anthropic_request(anthropic.to_string().as_bytes()).unwrap();
    assert_eq!(again.messages, request.messages);
    let back = openai_body(&again);
    let parts = &back["messages"][0]["content"];
    assert_eq!(
        parts[0],
        json!({"type": "text", "text": "What is in these?"})
    );
    assert_eq!(
        parts[1]["image_url"]["url"],
        format!("data:image/png;base64,{PNG}")
    );
    assert_eq!(parts[2]["image_url"]["url"], "https://example.com/cat.jpg");
}

/// What has no equivalent in the other protocol — audio, files named by id, server tools and
/// their blocks, Files API sources — is accepted (a target of the client's protocol gets it as
/// sent) and left out of the translated request, never refused.
#[test]
fn what_cannot_cross_is_accepted_and_left_out_of_the_translation() {
    let openai = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Listen"},
        {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}}]}],
        "tools": [{"type": "custom", "custom": {"name": "apply_patch"}},
                  {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
    let (request, _) = parse_openai_request(openai.to_string().as_bytes()).unwrap();
    assert_eq!(
        request.messages[0].content,
        vec![Content::Text {
            text: "Listen".into()
        }]
    );
    assert_eq!(request.tools.len(), 1);
    assert_eq!(request.tools[0].name, "f");
    let anthropic = json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "f1"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
            {"type": "search_result", "source": "s", "title": "t", "content": [{"type": "text", "text": "x"}]},
            {"type": "text", "text": "Summarize"}]},
        {"role": "assistant", "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "Done"}]}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let (request, _) = parse_anthropic_request(anthropic.to_string().as_bytes()).unwrap();
    // A PDF crosses (as a file); a Files API image and a search result do not.
    assert_eq!(
        request.messages[0].content,
        vec![
            Content::File {
                url: "data:application/pdf;base64,JVBE".into(),
                filename: None
            },
            Content::Text {
                text: "Summarize".into()
            }
        ]
    );
    assert_eq!(
        request.messages[1].content,
        vec![Content::Text {
            text: "Done".into()
        }]
    );
    assert!(request.tools.is_empty());
}

/// Reasoning from another protocol (an OpenAI-compatible `reasoning_content`) has no signature:
/// an Anthropic client gets no thinking block for it (one it could not send back), streaming or
/// not, and the text blocks around it are numbered without a gap.
#[test]
fn unsigned_reasoning_is_dropped_for_anthropic_clients_not_blanked() {
    let events = [
        start("chatcmpl-1", "deepseek-r1"),
        StreamEvent::ThinkingDelta {
            text: "Let me think.".into(),
        },
        text("42"),
        done(StopReason::EndTurn, "stop"),
    ];
    let bytes = encode_anthropic(&events);
    assert!(!bytes.contains("thinking"), "{bytes}");
    let starts: Vec<Value> = bytes
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|f| f["type"] == "content_block_start")
        .collect();
    assert_eq!(starts.len(), 1, "{bytes}");
    assert_eq!(starts[0]["index"], 0);
    assert_eq!(starts[0]["content_block"]["type"], "text");
    let whole = anthropic_message("m", &events);
    assert_eq!(whole["content"], json!([{"type": "text", "text": "42"}]));
    // OpenAI clients keep it, as `reasoning_content`.
    assert!(encode_openai(&events, false).contains("reasoning_content"));
}

/// The end user's id, parallel tool calls and `top_k` cross where the target has an equivalent.
#[test]
fn user_parallel_tool_calls_and_top_k_cross_where_they_can() {
    let tool =
        json!({"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}});
    let openai = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                        "tools": [tool], "parallel_tool_calls": false, "user": "u-42"});
    let (request, _) = parse_openai_request(openai.to_string().as_bytes()).unwrap();
    let anthropic = anthropic_body(&request);
    assert_eq!(anthropic["metadata"], json!({"user_id": "u-42"}));
    assert_eq!(
        anthropic["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert!(anthropic.get("top_k").is_none());

    let body = json!({"model": "m", "max_tokens": 5, "top_k": 40,
                      "metadata": {"user_id": "u-7"},
                      "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                      "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                      "messages": [{"role": "user", "content": "hi"}]});
    let (request, _) = parse_anthropic_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        (request.top_k, request.parallel_tool_calls),
        (Some(40), Some(false))
    );
    let openai = openai_body(&request);
    assert_eq!(openai["user"], "u-7");
    assert_eq!(openai["parallel_tool_calls"], false);
    assert_eq!(openai["tool_choice"], "required");
    assert!(
        openai.get("top_k").is_none(),
        "OpenAI has no top_k: dropped"
    );
    // Anthropic to Anthropic keeps all three.
    let again = anthropic_body(&request);
    assert_eq!(again["top_k"], 40);
    assert_eq!(again["metadata"]["user_id"], "u-7");
    assert_eq!(
        again["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
}
