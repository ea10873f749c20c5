//! The gateway's bounds on client connections, over raw sockets: a connection that does not send a
//! whole request in time (slowloris, a partial request line, silence), a kept-alive connection left
//! idle, a body that never ends, the connection cap; that a reply streaming for longer than all
//! of them is not cut; and that every rejected request gets a body in its caller's protocol.

use crate::support::demo_config::paced_sim;
use breakerbox::config::Config;
use breakerbox::gateway::{self, server::Running};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: &str = r#"
[gateway]
header_timeout = "300ms"
body_timeout = "300ms"
idle_timeout = "400ms"
max_connections = 6

[retry]
max_retries = 0
"#;

async fn gateway(faults: &[&str], token: Option<&str>) -> Running {
    let config = Config::parse(&format!("{LIMITS}{}", paced_sim()), "limits.toml").unwrap();
    let faults: Vec<String> = faults.iter().map(|f| f.to_string()).collect();
    let (running, _sim, _bus) = gateway::start_demo(&config, &faults, token.map(String::from))
        .await
        .unwrap();
    running
}

async fn connect(gw: &Running) -> TcpStream {
    TcpStream::connect(gw.addr).await.unwrap()
}

/// Everything the server sends until it closes the connection, and when it closed.
async fn until_closed(socket: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at((started + within).into(), socket.read(&mut buf)).await {
            Err(_) => panic!(
                "still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status and JSON body of one HTTP response.
fn response(bytes: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response: {text:?}"));
    let status = head[9..12].parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, body)
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_request_that_never_completes_its_headers_is_answered_408_and_closed() {
    let gw = gateway(&[], None).await;
    // A header byte every 100 ms (slowloris), half a request line, and nothing at all.
    let mut slow = connect(&gw).await;
    slow.write_all(b"POST /v1/messages HTTP/1.1\r\n")
        .await
        .unwrap();
    let dribble = tokio::spawn(async move {
        for _ in 0..40 {
            if slow.write_all(b"X").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    let opened = Instant::now();
    let mut partial = connect(&gw).await;
    partial.write_all(b"GET /heal").await.unwrap();
    let mut silent = connect(&gw).await;
    for socket in [&mut partial, &mut silent] {
        let (bytes, _) = until_closed(socket, Duration::from_secs(3)).await;
        let after = opened.elapsed();
        assert!(
            after >= Duration::from_millis(250),
            "closed after {after:?}"
        );
        let (status, body) = response(&bytes);
        assert_eq!(status, 408);
        assert!(message(&body).contains("header_timeout"), "{body}");
    }
    let mut slow = dribble.await.unwrap();
    let (_, after) = until_closed(&mut slow, Duration::from_secs(1)).await;
    assert!(
        after < Duration::from_secs(1),
        "slowloris kept its connection"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let gw = gateway(&[], None).await;
    let mut socket = connect(&gw).await;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (bytes, after) = until_closed(&mut socket, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200"));
    assert!(
        after >= Duration::from_millis(350) && after < Duration::from_secs(2),
        "closed after {after:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_body_that_never_ends_gets_408_in_the_callers_protocol() {
    let gw = gateway(&[], None).await;
    for (path, anthropic) in [("/v1/messages", true), ("/v1/chat/completions", false)] {
        let mut socket = connect(&gw).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut buf))
            .await
            .expect("answered")
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        let (status, body) = response(&buf[..n]);
        assert_eq!(status, 408);
        assert!(message(&body).contains("body_timeout"), "{body}");
        assert_eq!(body["type"] == "error", anthropic, "{body}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn past_the_cap_a_connection_is_refused_at_once_and_counted() {
    let gw = gateway(&[], None).await;
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(connect(&gw).await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut over = connect(&gw).await;
    let (bytes, after) = until_closed(&mut over, Duration::from_secs(2)).await;
    assert!(
        after < Duration::from_millis(200),
        "refused after {after:?}"
    );
    let (status, body) = response(&bytes);
    assert_eq!(status, 503);
    assert!(message(&body).contains("max_connections"), "{body}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Room again; the refusal was counted.
    let metrics = reqwest::get(format!("http://{}/metrics", gw.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("breakerbox_gateway_connections_refused_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("breakerbox_gateway_connections_max 6"));
    gw.stop().await;
}

#[tokio::test]
async fn a_reply_streaming_longer_than_every_limit_is_not_cut() {
    // 40 tokens, 50 ms apart: two seconds of stream, against limits of 300 and 400 ms.
    let gw = gateway(&["anthropic=latency:first=0ms,token=50ms"], None).await;
    let body = serde_json::json!({"model": "default", "max_tokens": 40, "stream": true,
        "messages": [{"role": "user", "content": "tell me a long story"}]});
    let started = Instant::now();
    let reply = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", gw.addr))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the stream was slow"
    );
    assert!(reply.contains("event: message_stop"), "cut: {reply}");
    gw.stop().await;
}

#[tokio::test]
async fn rejected_requests_get_a_body_in_the_callers_protocol() {
    let gw = gateway(&[], None).await;
    let long_uri = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let big_headers = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(500_000)
    );
    let big_control = format!(
        "POST /control HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n{}",
        "a".repeat(100_000)
    );
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("garbage", "BLAH\r\n\r\n".into(), 400, "not valid HTTP"),
        ("a long URI", long_uri, 414, "URI is too long"),
        ("huge headers", big_headers, 431, "headers are too large"),
        (
            "GET on /v1/messages",
            "GET /v1/messages HTTP/1.1\r\nhost: x\r\n\r\n".into(),
            405,
            "GET is not allowed on /v1/messages",
        ),
        (
            "GET on /v1/chat/completions",
            "GET /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n".into(),
            405,
            "GET is not allowed on /v1/chat/completions",
        ),
        (
            "chunked and a content-length",
            "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\
             transfer-encoding: chunked\r\n\r\n0\r\n\r\n"
                .into(),
            400,
            "not valid JSON",
        ),
        (
            "a huge content-length",
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 999999999\r\n\r\n"
                .into(),
            413,
            "larger than the gateway's limit",
        ),
        ("a huge /control body", big_control, 413, "larger than"),
    ];
    for (what, request, status, says) in cases {
        let mut socket = connect(&gw).await;
        // A server may close before reading everything: what matters is its answer.
        let _ = socket.write_all(request.as_bytes()).await;
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while !String::from_utf8_lossy(&got).contains("}") {
            match tokio::time::timeout(Duration::from_secs(3), socket.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                other => panic!(
                    "{what}: {other:?} after {:?}",
                    String::from_utf8_lossy(&got)
                ),
            }
        }
        let (got_status, body) = response(&got);
        assert_eq!(got_status, status, "{what}: {body}");
        let text = body.to_string();
        assert!(text.contains(says), "{what}: {text}");
        if what.contains("/v1/messages") {
            assert_eq!(body["type"], "error", "{what}: Anthropic's shape");
        }
        if what.contains("/v1/chat/completions") {
            assert!(
                body["error"].get("code").is_some(),
                "{what}: OpenAI's shape"
            );
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_models_list_wants_the_token_when_there_is_one() {
    let gw = gateway(&[], Some("models-token-123")).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/models", gw.addr);
    let without = http.get(&url).send().await.unwrap();
    assert_eq!(without.status(), 401);
    let body: Value = without.json().await.unwrap();
    assert!(message(&body).contains("token"), "{body}");
    let anthropic = http
        .get(&url)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 401);
    assert_eq!(anthropic.json::<Value>().await.unwrap()["type"], "error");
    let with = http
        .get(&url)
        .bearer_auth("models-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
    let list: Value = with.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], "default");
    gw.stop().await;
}

#[tokio::test]
async fn a_long_prompt_travels_on_the_bus_as_an_excerpt_with_its_length() {
    let config = Config::parse(&format!("{LIMITS}{}", paced_sim()), "limits.toml").unwrap();
    let (gw, _sim, bus) = gateway::start_demo(&config, &[], None).await.unwrap();
    let mut events = bus.subscribe();
    // A long conversation whose last message is a megabyte of text ("é" is two bytes).
    let last = "é".repeat(500_000);
    let mut messages: Vec<Value> = (0..20_000)
        .map(|i| serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("m{i}")}))
        .collect();
    messages.push(serde_json::json!({"role": "user", "content": last}));
    let body = serde_json::json!({"model": "default", "max_tokens": 5, "messages": messages});
    let reply = reqwest::Client::new()
        .post(format!("http://{}/v1/chat/completions", gw.addr))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let started = loop {
        let event = events.recv().await.unwrap();
        if let breakerbox::event::EventKind::RequestStarted {
            prompt,
            prompt_chars,
            ..
        } = &event.kind
        {
            break (prompt.clone(), *prompt_chars);
        }
    };
    let (prompt, chars) = started;
    let prompt = prompt.expect("a prompt excerpt");
    assert!(prompt.len() <= breakerbox::event::PROMPT_EXCERPT_BYTES);
    assert!(prompt.len() > 4000 && prompt.chars().all(|c| c == 'é'));
    assert_eq!(chars, Some(500_000));
}

#[tokio::test]
async fn an_unknown_endpoint_is_a_404_in_the_callers_protocol() {
    let gw = gateway(&[], None).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", gw.addr);
    // An OpenAI client on a path the gateway does not serve.
    let reply = http
        .post(url("/v1/embeddings"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["code"], "unknown_url", "{body}");
    assert!(message(&body).contains("POST /v1/embeddings"), "{body}");
    // An Anthropic client (its version header, or its paths).
    for (path, version) in [("/v1/files", true), ("/v1/messages/batches", false)] {
        let mut request = http.post(url(path)).body("{}");
        if version {
            request = request.header("anthropic-version", "2023-06-01");
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), 404);
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["type"], "error", "{path}: {body}");
        assert_eq!(body["error"]["type"], "not_found_error", "{path}: {body}");
    }
    // Anything else: the shape both read.
    let reply = http.get(url("/nope")).send().await.unwrap();
    assert_eq!(reply.status(), 404);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
}
