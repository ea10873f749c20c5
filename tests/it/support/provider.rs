//! Shared by the provider tests: the recorded fixtures, the events they must normalize to, and a tiny
//! HTTP/1.1 server on loopback that serves canned replies, oddly chunked.

use breakerbox::provider::http::{Flow, SseParser};
use breakerbox::provider::sse::Decoder;
use breakerbox::provider::{StopReason, StreamEvent, Usage};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub const ANTHROPIC_FIXTURES: [&str; 5] = [
    "anthropic/basic_response.sse",
    "anthropic/tool_use_response.sse",
    "anthropic/refusal_response.sse",
    "anthropic/extra_fields_response.sse",
    "anthropic/missing_usage_response.sse",
];
pub const OPENAI_FIXTURES: [&str; 2] = ["openai/basic_stream.sse", "openai/tool_calls_stream.sse"];
/// The Responses API's streams (`protocol = "openai_responses"`).
pub const RESPONSES_FIXTURES: [&str; 2] = [
    "openai/responses_stream.sse",
    "openai/responses_tool_call_stream.sse",
];

// The normalized events, built in one line each.

pub fn start(id: &str, model: &str) -> StreamEvent {
    StreamEvent::MessageStart {
        id: id.into(),
        model: model.into(),
    }
}
pub fn text(t: &str) -> StreamEvent {
    StreamEvent::TextDelta { text: t.into() }
}
pub fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> StreamEvent {
    StreamEvent::Usage(Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: 0,
    })
}
pub fn done(reason: StopReason, raw: &str) -> StreamEvent {
    StreamEvent::Done {
        stop_reason: reason,
        raw_stop_reason: Some(raw.into()),
    }
}
pub fn tool_start(index: u32, id: &str, name: &str) -> StreamEvent {
    StreamEvent::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }
}
pub fn tool_delta(index: u32, piece: &str) -> StreamEvent {
    StreamEvent::ToolCallDelta {
        index,
        partial_json: piece.into(),
    }
}

/// What each fixture must normalize to, exactly, event by event.
pub fn expected(name: &str) -> Vec<StreamEvent> {
    match name {
        "anthropic/basic_response.sse" => vec![
            start(
                "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK",
                "claude-3-opus-latest",
            ),
            usage(11, 1, 0, 0),
            text("Hello"),
            text(" there"),
            text("!"),
            usage(11, 6, 0, 0),
            done(StopReason::EndTurn, "end_turn"),
        ],
        "anthropic/tool_use_response.sse" => {
            let delta = |piece: &str| tool_delta(1, piece);
            vec![
                start("msg_019Q1hrJbZG26Fb9BQhrkHEr", "claude-sonnet-4-20250514"),
                usage(377, 1, 0, 0),
                text("I"),
                text("'ll check the current weather in Paris for you."),
                tool_start(1, "toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather"),
                // The first piece, `""`, is not passed on.
                delta("{\"locati"),
                delta("on\": \"P"),
                delta("ar"),
                delta("is\"}"),
                usage(377, 65, 0, 0),
                done(StopReason::ToolUse, "tool_use"),
            ]
        }
        "anthropic/refusal_response.sse" => vec![
            start("msg_01RefusalTestMessage123456789", "claude-opus-4-7"),
            usage(20, 1, 0, 0),
            usage(20, 0, 0, 0),
            done(StopReason::ContentFilter, "refusal"),
        ],
        "anthropic/extra_fields_response.sse" => vec![
            start("msg_123", "claude-3-opus-latest"),
            usage(11, 1, 0, 0),
            text("Hello"),
            text("!"),
            usage(11, 3, 0, 0),
            done(StopReason::EndTurn, "end_turn"),
        ],
        "anthropic/missing_usage_response.sse" => vec![
            start("msg_test", "claude-test"),
            text("hi"),
            usage(11, 1, 5, 3),
            done(StopReason::EndTurn, "end_turn"),
        ],
        "openai/basic_stream.sse" => {
            let words = [
                "I'm",
                " unable",
                " to",
                " provide",
                " real",
                "-time",
                " weather",
                " updates",
                ".",
                " To",
                " get",
                " the",
                " current",
                " weather",
                " in",
                " San",
                " Francisco",
                ",",
                " I",
                " recommend",
                " checking",
                " a",
                " reliable",
                " weather",
                " website",
                " or",
                " a",
                " weather",
                " app",
                ".",
            ];
            let mut events = vec![start(
                "chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL",
                "gpt-4o-2024-08-06",
            )];
            events.extend(words.iter().map(|w| text(w)));
            events.push(usage(14, 30, 0, 0));
            events.push(done(StopReason::EndTurn, "stop"));
            events
        }
        "openai/tool_calls_stream.sse" => {
            let pieces = [
                "{\"", "city", "\":\"", "Ed", "inburgh", "\",\"", "country", "\":\"", "UK",
                "\",\"", "units", "\":\"", "c", "\"}",
            ];
            let mut events = vec![
                start(
                    "chatcmpl-ABfw8AOXnoa2kzy11vVTSjuQhHCQr",
                    "gpt-4o-2024-08-06",
                ),
                tool_start(0, "call_c91SqDXlYFuETYv8mUHzz6pp", "GetWeatherArgs"),
            ];
            events.extend(pieces.iter().map(|p| tool_delta(0, p)));
            events.push(usage(76, 24, 0, 0));
            events.push(done(StopReason::ToolUse, "tool_calls"));
            events
        }
        "openai/responses_stream.sse" => {
            let words = [
                "I",
                " can't",
                " provide",
                " real",
                "-",
                "time",
                " updates",
                ",",
                " but",
                " you",
                " can",
                " easily",
                " check",
                " the",
                " current",
                " weather",
                " in",
                " San",
                " Francisco",
                " using",
                " a",
                " weather",
                " website",
                " or",
                " app",
                ".",
                " Typically",
                ",",
                " San",
                " Francisco",
                " has",
                " cool",
                ",",
                " foggy",
                " summers",
                " and",
                " mild",
                " winters",
                ",",
                " so",
                " it's",
                " good",
                " to",
                " be",
                " prepared",
                " for",
                " variable",
                " weather",
                "!",
            ];
            let mut events = vec![start(
                "resp_689a0b2545288193953c892439b42e2800b2e36c65a1fd4b",
                "gpt-4o-mini-2024-07-18",
            )];
            events.extend(words.iter().map(|w| text(w)));
            events.push(usage(14, 50, 0, 0));
            events.push(done(StopReason::EndTurn, "completed"));
            events
        }
        "openai/responses_tool_call_stream.sse" => {
            let summary = [
                "**Checking",
                " the",
                " weather**",
                "\n\nThe",
                " user",
                " wants",
                " Paris",
                " weather;",
                " I'll",
                " call",
                " get_weather.",
            ];
            let mut events = vec![start(
                "resp_68b1f2c9a3d48190b0c5e1f7d2a94e6b0a8c3f51d7e2b946",
                "gpt-5-2025-08-07",
            )];
            events.extend(summary.iter().map(|t| StreamEvent::ThinkingDelta {
                text: t.to_string(),
            }));
            events.push(tool_start(
                0,
                "call_Q4xKp7TnVwR2mZbJ8sLd3HfY",
                "get_weather",
            ));
            events.extend(
                ["{\"", "city", "\":\"", "Paris", "\"}"]
                    .iter()
                    .map(|p| tool_delta(0, p)),
            );
            // 1300 input tokens of which 1152 cached; 86 output of which 64 reasoning.
            events.push(StreamEvent::Usage(Usage {
                input_tokens: 148,
                output_tokens: 86,
                cache_read_tokens: 1152,
                cache_write_tokens: 0,
                reasoning_tokens: 64,
            }));
            events.push(done(StopReason::ToolUse, "completed"));
            events
        }
        other => panic!("no expectation for {other}"),
    }
}

/// The joined text and the joined JSON of tool call `index`, for readable assertions.
pub fn joined(events: &[StreamEvent], index: u32) -> (String, String) {
    let mut text = String::new();
    let mut json = String::new();
    for event in events {
        match event {
            StreamEvent::TextDelta { text: t } => text.push_str(t),
            StreamEvent::ToolCallDelta {
                index: i,
                partial_json,
            } if *i == index => json.push_str(partial_json),
            _ => {}
        }
    }
    (text, json)
}

/// Decode `bytes` fed in chunks of the given sizes (cycled) and run the SSE events through `parser`,
/// as the HTTP transport does. Stops at the protocol's terminal event.
pub fn normalize<P: SseParser>(
    mut parser: P,
    bytes: &[u8],
    sizes: &[usize],
) -> Result<Vec<StreamEvent>, breakerbox::provider::http::Failure> {
    let mut decoder = Decoder::new(1 << 20);
    let mut items = Vec::new();
    let mut rest = bytes;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        decoder.feed(chunk, &mut items);
        rest = tail;
    }
    decoder.finish(&mut items);
    let mut out = VecDeque::new();
    for item in items {
        let event = item.map_err(|e| breakerbox::provider::http::Failure::malformed("sse", e))?;
        if parser.event(event, &mut out)? == Flow::Finished {
            return Ok(out.into());
        }
    }
    parser.end(&mut out)?;
    Ok(out.into())
}

/// Cut `bytes` into pieces of awkward sizes.
pub fn odd_chunks(bytes: &[u8]) -> Vec<Vec<u8>> {
    let sizes = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 7, 1, 1];
    let mut chunks = Vec::new();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        chunks.push(chunk.to_vec());
        rest = tail;
    }
    chunks
}

/// A request as the test server received it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone)]
pub enum End {
    /// Terminate the chunked body properly.
    Finish,
    /// Close the connection mid-body.
    Cut,
    /// Keep the connection open, silent, until the client goes away.
    Hang,
}

#[derive(Debug, Clone)]
pub enum Reply {
    /// Read the request, never answer, wait for the client to go away.
    Silent,
    /// Read the request and close the connection without answering.
    Close,
    /// A whole response with a `content-length` body.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A 200 event stream: each chunk written (and flushed) on its own, `pause` after each.
    Stream {
        chunks: Vec<Vec<u8>>,
        pause: Duration,
        end: End,
    },
}

impl Reply {
    pub fn stream(bytes: &[u8]) -> Reply {
        Reply::Stream {
            chunks: odd_chunks(bytes),
            pause: Duration::ZERO,
            end: End::Finish,
        }
    }

    pub fn error(status: u16, headers: Vec<(&'static str, String)>, body: &str) -> Reply {
        Reply::Full {
            status,
            headers,
            body: body.into(),
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Captured>,
    /// One message each time a client closes a connection the server was holding open.
    closed: mpsc::UnboundedReceiver<()>,
}

impl TestServer {
    /// Serve `reply` to every connection, on 127.0.0.1.
    pub async fn start(reply: Reply) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (req_tx, requests) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (reply, req_tx, closed_tx) = (reply.clone(), req_tx.clone(), closed_tx.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, reply, req_tx, closed_tx).await;
                });
            }
        });
        TestServer {
            addr,
            requests,
            closed,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn request(&mut self) -> Captured {
        tokio::time::timeout(Duration::from_secs(5), self.requests.recv())
            .await
            .unwrap()
            .unwrap()
    }

    /// Wait until the client has closed a held-open connection.
    /// Whether no request has reached this server (so far).
    pub fn untouched(&mut self) -> bool {
        self.requests.try_recv().is_err()
    }

    pub async fn client_closed(&mut self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.closed.recv()).await,
            Ok(Some(()))
        )
    }
}

async fn serve(
    mut socket: TcpStream,
    reply: Reply,
    requests: mpsc::UnboundedSender<Captured>,
    closed: mpsc::UnboundedSender<()>,
) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let request = read_request(&mut socket).await?;
    let _ = requests.send(request);
    match reply {
        Reply::Silent => wait_for_close(socket, closed).await,
        Reply::Close => Ok(()),
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await?;
            socket.flush().await
        }
        Reply::Stream { chunks, pause, end } => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                )
                .await?;
            socket.flush().await?;
            // An empty chunk would be the end-of-body marker.
            for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
                let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                frame.extend_from_slice(&chunk);
                frame.extend_from_slice(b"\r\n");
                socket.write_all(&frame).await?;
                socket.flush().await?;
                if pause.is_zero() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(pause).await;
                }
            }
            match end {
                End::Finish => {
                    socket.write_all(b"0\r\n\r\n").await?;
                    socket.flush().await
                }
                End::Cut => Ok(()),
                End::Hang => wait_for_close(socket, closed).await,
            }
        }
    }
}

async fn wait_for_close(
    mut socket: TcpStream,
    closed: mpsc::UnboundedSender<()>,
) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                let _ = closed.send(());
                return Ok(());
            }
            Ok(Ok(_)) => {}
            Err(_) => return Ok(()),
        }
    }
}

async fn read_request(socket: &mut TcpStream) -> std::io::Result<Captured> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + length])
        .unwrap_or(serde_json::Value::Null);
    Ok(Captured {
        method,
        path,
        headers,
        body,
    })
}
