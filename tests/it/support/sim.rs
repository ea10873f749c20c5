//! Shared by the simulator tests: a fast simulator on loopback, request bodies, and raw-socket
//! helpers for the faults that only show below HTTP (resets, refusals, silences).
use breakerbox::provider::Protocol;
use breakerbox::sim::{Fault, SimConfig, SimProviderSpec, Simulator};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// No latency, no jitter: tests wait only for what they test.
pub fn fast(name: &str, protocol: Protocol) -> SimProviderSpec {
    SimProviderSpec {
        first_event_latency: Duration::ZERO,
        token_delay: Duration::ZERO,
        jitter: 0.0,
        ..SimProviderSpec::new(name, protocol)
    }
}

/// [`fast`] with a token every millisecond: replies long enough to be cut or timed.
pub fn paced(name: &str, protocol: Protocol) -> SimProviderSpec {
    SimProviderSpec {
        token_delay: Duration::from_millis(1),
        ..fast(name, protocol)
    }
}

pub fn fast_config() -> SimConfig {
    SimConfig {
        providers: vec![
            fast("anthropic", Protocol::Anthropic),
            fast("openai", Protocol::Openai),
            fast("responses", Protocol::OpenaiResponses),
        ],
        seed: 7,
    }
}

pub async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the simulator starts")
}

pub async fn start_fast() -> Simulator {
    start(fast_config()).await
}

pub fn set(sim: &Simulator, provider: &str, fault: &str) {
    sim.set_fault(provider, fault.parse::<Fault>().unwrap())
        .unwrap();
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

pub fn anthropic_body(stream: bool) -> Value {
    json!({
        "model": "claude-test-model",
        "max_tokens": 1024,
        "stream": stream,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
    })
}

pub fn openai_body(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "gpt-test-model",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Why is the sky blue?"},
        ],
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

pub fn weather_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    })
}

/// The request body for a provider of this protocol, streamed or not.
pub fn body_for(protocol: Protocol, stream: bool) -> Value {
    match protocol {
        Protocol::Anthropic => anthropic_body(stream),
        Protocol::Openai | Protocol::Azure => openai_body(stream, true),
        Protocol::OpenaiResponses => json!({
            "model": "gpt-5", "input": "Hello", "stream": stream,
        }),
        // The model and the method are in the path (`endpoint`, streamed).
        Protocol::Gemini => json!({
            "systemInstruction": {"parts": [{"text": "You are terse."}]},
            "contents": [{"role": "user", "parts": [{"text": "Why is the sky blue?"}]}],
        }),
        // The model and the operation are in the path (see `endpoint`).
        Protocol::Bedrock => json!({
            "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
        }),
    }
}

/// The URL to POST to for a provider on the shared port.
pub fn url(sim: &Simulator, name: &str, protocol: Protocol) -> String {
    endpoint(&sim.base_url(name).unwrap(), protocol)
}

/// The URL to POST to below a base URL.
pub fn endpoint(base: &str, protocol: Protocol) -> String {
    match protocol {
        Protocol::Anthropic => format!("{base}/v1/messages"),
        Protocol::Openai => format!("{base}/chat/completions"),
        Protocol::OpenaiResponses => format!("{base}/responses"),
        Protocol::Gemini => {
            format!("{base}/v1beta/models/gemini-test:streamGenerateContent?alt=sse")
        }
        Protocol::Bedrock => format!("{base}/model/anthropic.claude-test-v1%3A0/converse-stream"),
        Protocol::Azure => format!("{base}/openai/v1/chat/completions"),
    }
}

pub async fn post(url: &str, body: &Value) -> reqwest::Response {
    client()
        .post(url)
        .header("x-api-key", "sk-secret-test-key")
        .header("authorization", "Bearer sk-secret-test-key")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Read a response body as JSON (reqwest is built without its `json` feature).
pub trait JsonBody {
    async fn json_body(self) -> Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    }
}

/// SSE events of a body: `(event name, data)`, split at blank lines.
pub fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                } else {
                    panic!("unexpected SSE line {line:?} in {text:?}");
                }
            }
            (event, data)
        })
        .collect()
}

pub fn json(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data}"))
}

/// Open a connection and send one POST with a JSON body, keeping the connection.
pub async fn raw_post(addr: SocketAddr, path: &str, body: &Value) -> TcpStream {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// How reading a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The server closed it (FIN).
    Closed,
    /// The server reset it (RST).
    Reset,
    /// Still open and silent when we stopped waiting.
    Silent,
}

/// Read until the connection ends or stays silent for `quiet`.
pub async fn read_until_end(stream: &mut TcpStream, quiet: Duration) -> (Vec<u8>, End) {
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(quiet, stream.read(&mut buf)).await {
            Err(_) => return (received, End::Silent),
            Ok(Ok(0)) => return (received, End::Closed),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (received, End::Reset);
            }
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    }
}

/// Wait (up to 5 s) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Requests being answered now, across providers.
pub fn active(sim: &Simulator) -> u64 {
    sim.providers().iter().map(|p| p.active).sum()
}

/// How many finished requests of a provider had this outcome.
pub fn outcome_count(sim: &Simulator, provider: &str, outcome: &str) -> u64 {
    sim.providers()
        .iter()
        .find(|p| p.name == provider)
        .and_then(|p| p.outcomes.get(outcome).copied())
        .unwrap_or(0)
}

pub const PROTOCOLS: [(&str, Protocol); 3] = [
    ("anthropic", Protocol::Anthropic),
    ("openai", Protocol::Openai),
    ("responses", Protocol::OpenaiResponses),
];

/// Whether a raw body of any protocol carries its end marker.
pub fn has_end_marker(text: &str) -> bool {
    text.contains("message_stop") || text.contains("[DONE]") || text.contains("response.completed")
}

/// Content tokens in a raw body of any protocol: words and pieces of tool input.
pub fn tokens(text: &str) -> usize {
    text.matches("\"text_delta\"").count()
        + text.matches("{\"content\":\"").count()
        + text
            .matches("\"type\":\"response.output_text.delta\"")
            .count()
}
