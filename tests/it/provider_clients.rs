//! The Anthropic and OpenAI clients over real loopback HTTP: fixtures, requests, error responses,
//! time limits, cuts, and that the API key never shows in an error.

use crate::support::provider::*;
use breakerbox::provider::{
    self, Content, ErrorClass, Message, Phase, Protocol, Provider, ProviderConfig, ProviderError,
    Request, Role, StreamEvent, Timeouts, ToolDef,
};
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-SECRET-key-0123456789";

fn config(protocol: Protocol, base_url: String, timeouts: Timeouts) -> ProviderConfig {
    ProviderConfig {
        api_key: provider::ApiKey::new(KEY),
        model: "configured-model".into(),
        timeouts,
        ..ProviderConfig::new(format!("test-{protocol}"), protocol, base_url)
    }
}

fn client(protocol: Protocol, server: &TestServer) -> Arc<dyn Provider> {
    timed_client(protocol, server.url(), Timeouts::default())
}

fn timed_client(protocol: Protocol, base_url: String, timeouts: Timeouts) -> Arc<dyn Provider> {
    let base_url = match protocol {
        Protocol::Anthropic | Protocol::Gemini => base_url,
        Protocol::Azure => base_url,
        Protocol::Openai | Protocol::OpenaiResponses => format!("{base_url}/v1"),
        Protocol::Bedrock => base_url,
    };
    provider::build(config(protocol, base_url, timeouts)).unwrap()
}

/// Short limits for the tests that wait for one; each test widens the ones it does not test.
fn short(connect: u64, headers: u64, first_event: u64, idle: u64, total: u64) -> Timeouts {
    let ms = Duration::from_millis;
    Timeouts {
        connect: ms(connect),
        headers: ms(headers),
        first_event: ms(first_event),
        idle: ms(idle),
        total: ms(total),
    }
}

/// Every item of a reply: the events, and the error that ended it, if any. Checks that an error is
/// the last item and that no error shows the key.
async fn run(
    provider: &dyn Provider,
    request: Request,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut stream = provider.stream(request);
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(err) => {
                for text in [err.to_string(), format!("{err:?}")] {
                    assert!(!text.contains(KEY), "key leaked: {text}");
                }
                assert!(stream.next().await.is_none(), "items after an error");
                return (events, Some(err));
            }
        }
    }
    (events, None)
}

async fn error_of(provider: &dyn Provider) -> ProviderError {
    run(provider, Request::prompt("hi"))
        .await
        .1
        .expect("an error")
}

// ---- fixtures over HTTP ----

#[tokio::test]
async fn anthropic_fixtures_over_http() {
    for name in ANTHROPIC_FIXTURES {
        let server = TestServer::start(Reply::stream(&fixture(name))).await;
        let (events, err) = run(
            &*client(Protocol::Anthropic, &server),
            Request::prompt("hi"),
        )
        .await;
        assert_eq!(err, None, "{name}");
        assert_eq!(events, expected(name), "{name}");
    }
}

#[tokio::test]
async fn openai_fixtures_over_http() {
    for name in OPENAI_FIXTURES {
        let server = TestServer::start(Reply::stream(&fixture(name))).await;
        let (events, err) = run(&*client(Protocol::Openai, &server), Request::prompt("hi")).await;
        assert_eq!(err, None, "{name}");
        assert_eq!(events, expected(name), "{name}");
    }
}

#[tokio::test]
async fn crlf_and_keepalive_comments_over_http() {
    let text = String::from_utf8(fixture("openai/tool_calls_stream.sse")).unwrap();
    let text = format!(
        ": OPENROUTER PROCESSING\r\n\r\n{}",
        text.replace('\n', "\r\n")
    );
    let server = TestServer::start(Reply::stream(text.as_bytes())).await;
    let (events, err) = run(&*client(Protocol::Openai, &server), Request::prompt("hi")).await;
    assert_eq!(err, None);
    assert_eq!(events, expected("openai/tool_calls_stream.sse"));
}

// ---- what goes on the wire ----

fn conversation() -> Request {
    Request {
        model: String::new(),
        system: Some("Be brief.".into()),
        messages: std::sync::Arc::new(vec![
            Message::user("Weather in Paris?"),
            Message {
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
            Message {
                role: Role::User,
                content: vec![Content::ToolResult {
                    tool_use_id: "call_1".into(),
                    content: "18C".into(),
                    is_error: false,
                }],
            },
        ]),
        tools: vec![ToolDef {
            name: "get_weather".into(),
            description: "Current weather".into(),
            input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        max_tokens: 300,
        temperature: Some(0.5),
        credentials: None,
        as_requested: None,
        original: None,
        prefill: None,
        reasoning_effort: None,
        output_format: None,
        parallel_tool_calls: None,
        top_k: None,
        user: None,
        ..Request::default()
    }
}

#[tokio::test]
async fn anthropic_request_on_the_wire() {
    let mut server =
        TestServer::start(Reply::stream(&fixture("anthropic/basic_response.sse"))).await;
    run(&*client(Protocol::Anthropic, &server), conversation()).await;
    let req = server.request().await;
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(req.headers["x-api-key"], KEY);
    assert_eq!(req.headers["anthropic-version"], "2023-06-01");
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(req.headers["accept"], "text/event-stream");
    assert!(!req.headers.contains_key("authorization"));
    assert_eq!(
        req.body,
        json!({
            "model": "configured-model",
            "max_tokens": 300,
            "stream": true,
            "system": "Be brief.",
            "temperature": 0.5,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C", "is_error": false},
                ]},
            ],
            "tools": [{
                "name": "get_weather",
                "description": "Current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }],
        })
    );
}

#[tokio::test]
async fn openai_request_on_the_wire() {
    let mut server = TestServer::start(Reply::stream(&fixture("openai/basic_stream.sse"))).await;
    let request = Request {
        model: "asked-model".into(),
        ..conversation()
    };
    run(&*client(Protocol::Openai, &server), request).await;
    let req = server.request().await;
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(req.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(
        req.body,
        json!({
            "model": "asked-model",
            "max_tokens": 300,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.5,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                }]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }}],
        })
    );
}

#[tokio::test]
async fn openai_without_a_key_sends_no_authorization() {
    let mut server = TestServer::start(Reply::stream(&fixture("openai/basic_stream.sse"))).await;
    let keyless = ProviderConfig {
        api_key: provider::ApiKey::default(),
        ..config(
            Protocol::Openai,
            format!("{}/v1", server.url()),
            Timeouts::default(),
        )
    };
    let (_, err) = run(&*provider::build(keyless).unwrap(), Request::prompt("hi")).await;
    assert_eq!(err, None);
    assert!(!server.request().await.headers.contains_key("authorization"));
}

// ---- error responses ----

#[tokio::test]
async fn anthropic_error_responses() {
    let server = TestServer::start(Reply::error(
        429,
        vec![("retry-after", "7".into()), ("request-id", "req_header".into())],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"},"request_id":"req_body"}"#,
    ))
    .await;
    let err = error_of(&*client(Protocol::Anthropic, &server)).await;
    assert_eq!(
        (err.class, err.phase, err.status),
        (ErrorClass::RateLimited, Phase::Headers, Some(429))
    );
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(err.request_id.as_deref(), Some("req_header"));
    assert_eq!(err.error_type.as_deref(), Some("rate_limit_error"));
    assert_eq!(
        err.message,
        "Number of requests has exceeded your rate limit"
    );
    assert_eq!(err.provider, "test-anthropic");

    let server = TestServer::start(Reply::error(
        529,
        vec![],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#,
    ))
    .await;
    let err = error_of(&*client(Protocol::Anthropic, &server)).await;
    assert_eq!(
        (err.class, err.status, err.retry_after),
        (ErrorClass::Overloaded, Some(529), None)
    );
    assert_eq!(err.request_id.as_deref(), Some("req_011"));

    let server = TestServer::start(Reply::error(
        400,
        vec![],
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
    ))
    .await;
    let err = error_of(&*client(Protocol::Anthropic, &server)).await;
    assert_eq!(err.class, ErrorClass::ContextLength);
}

#[tokio::test]
async fn openai_error_responses() {
    let server = TestServer::start(Reply::error(
        429,
        vec![
            ("retry-after", "20".into()),
            ("retry-after-ms", "1500".into()),
            ("x-request-id", "req_abc".into()),
        ],
        r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
    ))
    .await;
    let err = error_of(&*client(Protocol::Openai, &server)).await;
    assert_eq!(
        (err.class, err.phase, err.status),
        (ErrorClass::Quota, Phase::Headers, Some(429))
    );
    assert_eq!(err.retry_after, Some(Duration::from_millis(1500)));
    assert_eq!(err.request_id.as_deref(), Some("req_abc"));
    assert_eq!(err.code.as_deref(), Some("insufficient_quota"));

    let date = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
    let server = TestServer::start(Reply::error(
        503,
        vec![("retry-after", date)],
        "Service Unavailable",
    ))
    .await;
    let err = error_of(&*client(Protocol::Openai, &server)).await;
    assert_eq!((err.class, err.status), (ErrorClass::Overloaded, Some(503)));
    assert_eq!(err.message, "Service Unavailable");
    let wait = err.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );

    for (status, body, class) in [
        (
            400,
            r#"{"object":"error","message":"maximum context length is 8192 tokens","type":"BadRequestError","code":400}"#,
            ErrorClass::ContextLength,
        ),
        (
            500,
            r#"{"error":"something broke"}"#,
            ErrorClass::ServerError,
        ),
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            ErrorClass::Auth,
        ),
        (
            404,
            r#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#,
            ErrorClass::NotFound,
        ),
    ] {
        let server = TestServer::start(Reply::error(status, vec![], body)).await;
        let err = error_of(&*client(Protocol::Openai, &server)).await;
        assert_eq!((err.class, err.status), (class, Some(status)), "{body}");
    }
}

#[tokio::test]
async fn a_key_echoed_by_the_server_is_redacted() {
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {KEY}.","code":"invalid_api_key"}}}}"#
    );
    for protocol in [
        Protocol::Anthropic,
        Protocol::Openai,
        Protocol::OpenaiResponses,
    ] {
        let server = TestServer::start(Reply::error(401, vec![], &body)).await;
        // `run` asserts the key is not in Display or Debug.
        let err = error_of(&*client(protocol, &server)).await;
        assert_eq!(err.class, ErrorClass::Auth);
        assert_eq!(err.message, "Incorrect API key provided: <redacted>.");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_names_only_its_host() {
    for protocol in [
        Protocol::Anthropic,
        Protocol::Openai,
        Protocol::OpenaiResponses,
    ] {
        let mut elsewhere = TestServer::start(Reply::stream(b"")).await;
        let location = format!("{}/steal?key={KEY}", elsewhere.url());
        let server =
            TestServer::start(Reply::error(307, vec![("location", location.clone())], "")).await;
        let err = error_of(&*client(protocol, &server)).await;
        assert_eq!(
            (err.class, err.status, err.phase),
            (ErrorClass::Redirect, Some(307), Phase::Headers)
        );
        let host = elsewhere.url().trim_start_matches("http://").to_string();
        assert!(
            err.message
                .contains(&format!("redirect to {host} not followed")),
            "{}",
            err.message
        );
        assert!(!err.message.contains("steal"), "{}", err.message);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(elsewhere.untouched(), "the other origin was contacted");
    }
}

// ---- in-stream errors ----

#[tokio::test]
async fn in_stream_errors_take_the_phase_of_what_was_yielded() {
    let error = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let basic = String::from_utf8(fixture("anthropic/basic_response.sse")).unwrap();
    let start = &basic[..basic.find("event: content_block_delta").unwrap()];

    let server = TestServer::start(Reply::stream(format!("{start}{error}").as_bytes())).await;
    let (events, err) = run(
        &*client(Protocol::Anthropic, &server),
        Request::prompt("hi"),
    )
    .await;
    let err = err.unwrap();
    assert_eq!(
        (err.class, err.phase, err.status),
        (ErrorClass::Overloaded, Phase::MidStream, None)
    );
    assert_eq!(events.len(), 2); // message start and its usage

    // A ping is an SSE event but not a normalized one: the phase is still first_event.
    let ping = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
    let server = TestServer::start(Reply::stream(format!("{ping}{error}").as_bytes())).await;
    let err = error_of(&*client(Protocol::Anthropic, &server)).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Overloaded, Phase::FirstEvent)
    );

    let server = TestServer::start(Reply::stream(
        b"data: {\"error\":{\"message\":\"Rate limit exceeded\",\"type\":\"rate_limit_exceeded\"}}\n\n",
    ))
    .await;
    let err = error_of(&*client(Protocol::Openai, &server)).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::RateLimited, Phase::FirstEvent)
    );
}

#[tokio::test]
async fn malformed_and_oversized_events() {
    let server = TestServer::start(Reply::stream(
        b"data: {\"id\":\"x\",\"choices\":[]}\n\ndata: {nope\n\n",
    ))
    .await;
    let err = error_of(&*client(Protocol::Openai, &server)).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Malformed, Phase::MidStream)
    );

    let mut huge = b"data: ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 4096));
    let server = TestServer::start(Reply::stream(&huge)).await;
    let small = ProviderConfig {
        max_event_bytes: 1024,
        ..config(
            Protocol::Openai,
            format!("{}/v1", server.url()),
            Timeouts::default(),
        )
    };
    let (_, err) = run(&*provider::build(small).unwrap(), Request::prompt("hi")).await;
    let err = err.unwrap();
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Malformed, Phase::FirstEvent)
    );
    assert!(
        err.message.contains("SSE event exceeds 1024 bytes"),
        "{}",
        err.message
    );
}

// ---- connection failures and time limits ----

#[tokio::test]
async fn connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = error_of(&*timed_client(
        Protocol::Anthropic,
        url,
        short(1000, 5000, 5000, 5000, 9000),
    ))
    .await;
    assert_eq!(
        (err.class, err.phase, err.status),
        (ErrorClass::Connect, Phase::Connect, None)
    );
}

#[tokio::test]
async fn closed_before_headers() {
    let server = TestServer::start(Reply::Close).await;
    let err = error_of(&*client(Protocol::Openai, &server)).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Connect, Phase::Headers)
    );
}

#[tokio::test]
async fn no_headers_in_time() {
    let mut server = TestServer::start(Reply::Silent).await;
    let provider = timed_client(
        Protocol::Anthropic,
        server.url(),
        short(1000, 200, 5000, 5000, 9000),
    );
    let began = Instant::now();
    let err = error_of(&*provider).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Timeout, Phase::Headers)
    );
    assert!(err.message.contains("headers"), "{}", err.message);
    assert!(began.elapsed() < Duration::from_secs(2));
    // The attempt is over: its connection is closed, not left hanging.
    assert!(server.client_closed(Duration::from_secs(2)).await);

    // The first-event limit also bounds the wait for headers.
    let server = TestServer::start(Reply::Silent).await;
    let provider = timed_client(
        Protocol::Openai,
        server.url(),
        short(1000, 5000, 200, 5000, 9000),
    );
    let err = error_of(&*provider).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Timeout, Phase::Headers)
    );
    assert!(err.message.contains("first event"), "{}", err.message);
}

fn hang_after(bytes: &[u8]) -> Reply {
    Reply::Stream {
        chunks: vec![bytes.to_vec()],
        pause: Duration::ZERO,
        end: End::Hang,
    }
}

const MESSAGE_START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\"}}\n\n";

#[tokio::test]
async fn headers_then_silence_is_a_first_event_timeout() {
    let server = TestServer::start(hang_after(b"")).await;
    let provider = timed_client(
        Protocol::Anthropic,
        server.url(),
        short(1000, 5000, 250, 5000, 9000),
    );
    let err = error_of(&*provider).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Timeout, Phase::FirstEvent)
    );

    // Pings alone do not make a first event, but they do keep the stall detector quiet.
    let server = TestServer::start(Reply::Stream {
        chunks: vec![b"event: ping\ndata: {\"type\":\"ping\"}\n\n".to_vec(); 40],
        pause: Duration::from_millis(25),
        end: End::Hang,
    })
    .await;
    let provider = timed_client(
        Protocol::Anthropic,
        server.url(),
        short(1000, 5000, 500, 300, 9000),
    );
    let err = error_of(&*provider).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Timeout, Phase::FirstEvent)
    );
}

#[tokio::test]
async fn silence_after_an_event_is_a_stall() {
    let mut server = TestServer::start(hang_after(MESSAGE_START.as_bytes())).await;
    let provider = timed_client(
        Protocol::Anthropic,
        server.url(),
        short(1000, 5000, 5000, 250, 9000),
    );
    let began = Instant::now();
    let (events, err) = run(&*provider, Request::prompt("hi")).await;
    let err = err.unwrap();
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Stalled, Phase::MidStream)
    );
    assert_eq!(events.len(), 1);
    assert!(began.elapsed() < Duration::from_secs(2));
    assert!(server.client_closed(Duration::from_secs(2)).await);

    // A ping then silence: stalled before any normalized event.
    let server = TestServer::start(hang_after(b"event: ping\ndata: {\"type\":\"ping\"}\n\n")).await;
    let provider = timed_client(
        Protocol::Anthropic,
        server.url(),
        short(1000, 5000, 5000, 250, 9000),
    );
    let err = error_of(&*provider).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Stalled, Phase::FirstEvent)
    );
}

#[tokio::test]
async fn the_total_limit_ends_a_trickling_stream() {
    let text = "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
    let server = TestServer::start(Reply::Stream {
        chunks: vec![text.as_bytes().to_vec(); 100],
        pause: Duration::from_millis(30),
        end: End::Finish,
    })
    .await;
    let provider = timed_client(
        Protocol::Openai,
        server.url(),
        short(1000, 5000, 5000, 200, 400),
    );
    let (events, err) = run(&*provider, Request::prompt("hi")).await;
    let err = err.unwrap();
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::Timeout, Phase::MidStream)
    );
    assert!(err.message.contains("total"), "{}", err.message);
    assert!(events.len() > 3);
}

#[tokio::test]
async fn a_body_cut_mid_stream() {
    let bytes = fixture("anthropic/tool_use_response.sse");
    let server = TestServer::start(Reply::Stream {
        chunks: odd_chunks(&bytes[..bytes.len() / 2]),
        pause: Duration::ZERO,
        end: End::Cut,
    })
    .await;
    let (events, err) = run(
        &*client(Protocol::Anthropic, &server),
        Request::prompt("hi"),
    )
    .await;
    let err = err.unwrap();
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::StreamCut, Phase::MidStream)
    );
    assert!(!events.is_empty());

    // A clean end of body before the terminal event is a cut too.
    let text = String::from_utf8(fixture("openai/basic_stream.sse")).unwrap();
    let cut = &text[..text.find("\"finish_reason\":\"stop\"").unwrap()];
    let server = TestServer::start(Reply::stream(
        &cut.as_bytes()[..cut.rfind("\n\n").unwrap() + 2],
    ))
    .await;
    let (_, err) = run(&*client(Protocol::Openai, &server), Request::prompt("hi")).await;
    assert_eq!(err.unwrap().class, ErrorClass::StreamCut);
}

#[tokio::test]
async fn dropping_the_stream_aborts_the_request() {
    let mut server = TestServer::start(hang_after(MESSAGE_START.as_bytes())).await;
    let provider = client(Protocol::Anthropic, &server);
    let mut stream = provider.stream(Request::prompt("hi"));
    assert!(matches!(
        stream.next().await,
        Some(Ok(StreamEvent::MessageStart { .. }))
    ));
    drop(stream);
    assert!(server.client_closed(Duration::from_secs(2)).await);
}

// ---- the Responses API (`openai_responses`) ----

#[tokio::test]
async fn responses_fixtures_over_http() {
    for name in RESPONSES_FIXTURES {
        let server = TestServer::start(Reply::stream(&fixture(name))).await;
        let (events, err) = run(
            &*client(Protocol::OpenaiResponses, &server),
            Request::prompt("hi"),
        )
        .await;
        assert_eq!(err, None, "{name}");
        assert_eq!(events, expected(name), "{name}");
    }
}

#[tokio::test]
async fn responses_request_on_the_wire() {
    let mut server =
        TestServer::start(Reply::stream(&fixture("openai/responses_stream.sse"))).await;
    let request = Request {
        model: "asked-model".into(),
        stop: vec!["END".into()],
        tool_choice: Some(provider::ToolChoice::Any),
        parallel_tool_calls: Some(true),
        user: Some("end-user-1".into()),
        ..conversation()
    };
    run(&*client(Protocol::OpenaiResponses, &server), request).await;
    let req = server.request().await;
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/v1/responses")
    );
    assert_eq!(req.headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(req.headers["accept"], "text/event-stream");
    assert_eq!(
        req.body,
        json!({
            "model": "asked-model",
            "stream": true,
            "store": false,
            "max_output_tokens": 300,
            "instructions": "Be brief.",
            "temperature": 0.5,
            "safety_identifier": "end-user-1",
            "tool_choice": "required",
            "parallel_tool_calls": true,
            "tools": [{
                "type": "function",
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": false,
            }],
            "input": [
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Weather in Paris?"},
                ]},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "Checking.", "annotations": []},
                ]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                 "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            ],
        }),
        "no `stop`: the Responses API has none"
    );
}

#[tokio::test]
async fn responses_error_responses_are_openai_errors() {
    let server = TestServer::start(Reply::error(
        429,
        vec![
            ("retry-after", "20".into()),
            ("retry-after-ms", "1500".into()),
            ("x-request-id", "req_abc".into()),
        ],
        r#"{"error":{"message":"Rate limit reached for gpt-5","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
    ))
    .await;
    let err = error_of(&*client(Protocol::OpenaiResponses, &server)).await;
    assert_eq!(
        (err.class, err.phase, err.status),
        (ErrorClass::RateLimited, Phase::Headers, Some(429))
    );
    assert_eq!(err.retry_after, Some(Duration::from_millis(1500)));
    assert_eq!(err.request_id.as_deref(), Some("req_abc"));
    assert_eq!(err.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(err.provider, "test-openai_responses");

    for (status, body, class) in [
        (
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
            ErrorClass::Quota,
        ),
        (
            400,
            r#"{"error":{"message":"Your input exceeds the context window of this model.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}"#,
            ErrorClass::ContextLength,
        ),
        (
            500,
            r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#,
            ErrorClass::ServerError,
        ),
        (
            503,
            r#"{"error":{"message":"The server is overloaded or not ready yet.","type":"server_error","param":null,"code":null}}"#,
            ErrorClass::Overloaded,
        ),
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
            ErrorClass::Auth,
        ),
    ] {
        let server = TestServer::start(Reply::error(status, vec![], body)).await;
        let err = error_of(&*client(Protocol::OpenaiResponses, &server)).await;
        assert_eq!((err.class, err.status), (class, Some(status)), "{body}");
    }
}

/// The text fixture up to (not including) its terminal event, then `tail`.
fn responses_stream_ending_with(tail: &str) -> String {
    let text = String::from_utf8(fixture("openai/responses_stream.sse")).unwrap();
    let head = &text[..text.find("event: response.completed").unwrap()];
    format!("{head}{tail}")
}

#[tokio::test]
async fn responses_in_stream_endings() {
    let provider = |server: &TestServer| client(Protocol::OpenaiResponses, server);

    // Incomplete at the output limit: a reply all the same, stopped by max tokens.
    let incomplete = r#"event: response.incomplete
data: {"type":"response.incomplete","sequence_number":59,"response":{"id":"resp_689a0b2545288193953c892439b42e2800b2e36c65a1fd4b","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"gpt-4o-mini-2024-07-18","output":[],"usage":{"input_tokens":14,"input_tokens_details":{"cached_tokens":0},"output_tokens":50,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":64}}}

"#;
    let server = TestServer::start(Reply::stream(
        responses_stream_ending_with(incomplete).as_bytes(),
    ))
    .await;
    let (events, err) = run(&*provider(&server), Request::prompt("hi")).await;
    assert_eq!(err, None);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Done {
            stop_reason: provider::StopReason::MaxTokens,
            raw_stop_reason: Some("max_output_tokens".into())
        })
    );

    // `response.failed` after text: a mid-stream failure of the class its code says.
    let failed = r#"event: response.failed
data: {"type":"response.failed","sequence_number":59,"response":{"id":"resp_689a0b2545288193953c892439b42e2800b2e36c65a1fd4b","object":"response","status":"failed","error":{"code":"rate_limit_exceeded","message":"Rate limit reached"},"model":"gpt-4o-mini-2024-07-18","output":[],"usage":null}}

"#;
    let server = TestServer::start(Reply::stream(
        responses_stream_ending_with(failed).as_bytes(),
    ))
    .await;
    let (events, err) = run(&*provider(&server), Request::prompt("hi")).await;
    let err = err.unwrap();
    assert_eq!(
        (err.class, err.phase, err.code.as_deref()),
        (
            ErrorClass::RateLimited,
            Phase::MidStream,
            Some("rate_limit_exceeded")
        )
    );
    assert_eq!(err.message, "Rate limit reached");
    assert!(events.len() > 10, "the text before the failure");

    // An `error` event before anything else: failed before the first event.
    let server = TestServer::start(Reply::stream(
        b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":0,\"code\":\"server_error\",\"message\":\"The server had an error\",\"param\":null}\n\n",
    ))
    .await;
    let err = error_of(&*provider(&server)).await;
    assert_eq!(
        (err.class, err.phase),
        (ErrorClass::ServerError, Phase::FirstEvent)
    );

    // A clean end of body before the terminal event, and a body cut: both cuts.
    let server =
        TestServer::start(Reply::stream(responses_stream_ending_with("").as_bytes())).await;
    let (events, err) = run(&*provider(&server), Request::prompt("hi")).await;
    assert_eq!(
        err.map(|e| (e.class, e.phase)),
        Some((ErrorClass::StreamCut, Phase::MidStream))
    );
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Done { .. })));
    let bytes = fixture("openai/responses_tool_call_stream.sse");
    let server = TestServer::start(Reply::Stream {
        chunks: odd_chunks(&bytes[..bytes.len() / 2]),
        pause: Duration::ZERO,
        end: End::Cut,
    })
    .await;
    let (_, err) = run(&*provider(&server), Request::prompt("hi")).await;
    assert_eq!(err.map(|e| e.class), Some(ErrorClass::StreamCut));
}
