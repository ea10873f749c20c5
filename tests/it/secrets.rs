//! A hostile upstream that echoes every secret it can in every field, header and body it has —
//! error types, codes, params, request ids, plain-text bodies, in-stream errors, stream ids,
//! model names, reply text split across events, tool calls, stop reasons, a redirect to another
//! origin, and a key placed across the message cut at every offset — for both protocols, through
//! the real binary: `ask` (text and JSON), the console in a terminal (every screen it drew), `serve`
//! (every client-facing response, `/events` and its headless log), the recordings of all three, and
//! the report and export of each. No secret, nor any fragment of one long enough to count as it,
//! appears anywhere; the redirect is never followed.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use breakerbox::secret::MIN_FRAGMENT;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ANTHROPIC_KEY: &str = "sk-ant-api03-Qm3vT8xLr7TgYp4Wm1KcHdZa9Bn2Xe5Rf0Jh6Uy4Io7P";
const OPENAI_KEY: &str = "sk-proj-Hn4Ks8Lq2Wd6Zr0Ty3Ux7Vb1Nm5Pc9Ej2Ga6Fo4Ri8Sh";
const TOKEN: &str = "gw-token-7Rk2Mz9Qw4Lx8Pn3Vb6Hd1Fj5Gs0Ct";
const QUERY_KEY: &str = "AIzaSyQ-query-secret-4f9K2m7X1p";

/// Everything a hostile server may know, in one string.
fn soup() -> String {
    format!("{ANTHROPIC_KEY} {OPENAI_KEY} {TOKEN} {QUERY_KEY}")
}

/// The secrets of a command that holds no gateway token (`ask`, and what reads its recording).
const ASK_SECRETS: [&str; 3] = [ANTHROPIC_KEY, OPENAI_KEY, QUERY_KEY];
/// The secrets of the gateway.
const SERVE_SECRETS: [&str; 4] = [ANTHROPIC_KEY, OPENAI_KEY, TOKEN, QUERY_KEY];

/// The fragments of `secrets` in `text` that count as one: any run of `MIN_FRAGMENT` characters.
fn leaks(what: &str, text: &str, secrets: &[&str]) -> Vec<String> {
    // Every window as a number, sorted: a binary search per position keeps this fast in a debug
    // build over megabytes of output.
    let number = |w: &[u8]| u128::from_le_bytes(w.try_into().expect("16 bytes"));
    let mut windows: Vec<u128> = secrets
        .iter()
        .flat_map(|s| s.as_bytes().windows(MIN_FRAGMENT).map(number))
        .collect();
    windows.sort_unstable();
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at + MIN_FRAGMENT <= bytes.len() {
        if windows
            .binary_search(&number(&bytes[at..at + MIN_FRAGMENT]))
            .is_ok()
        {
            let context = String::from_utf8_lossy(&bytes[at.saturating_sub(80)..]);
            let context: String = context.chars().take(200).collect();
            found.push(format!("{what}: …{context}…"));
            // One report per place.
            at += MIN_FRAGMENT;
        } else {
            at += 1;
        }
    }
    found
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    Anthropic,
    Openai,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Anthropic => "anthropic",
            Proto::Openai => "openai",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Proto::Anthropic => ANTHROPIC_KEY,
            Proto::Openai => OPENAI_KEY,
        }
    }
}

/// One misbehaviour of the hostile server.
#[derive(Clone, Debug)]
enum Case {
    /// An error status with every field and header echoing.
    Status,
    /// A plain-text error body.
    Plain,
    /// A 307 to another origin, with the key in the query.
    Redirect,
    /// A 200 stream that starts (ids and model echoing) and then sends an error event.
    InStream,
    /// Some text, then an in-stream error: the gateway has already started its client's stream.
    MidText,
    /// A complete reply with secrets in its ids, model, text (a key split across two events),
    /// tool call and stop reason.
    Content,
    /// An error message with the key starting `n` characters before the 1,000-character cut.
    Cut(usize),
    /// A message ending with the first `n` characters of the key, as if the upstream cut it.
    Prefix(usize),
}

impl Case {
    fn slug(&self) -> String {
        match self {
            Case::Status => "status".into(),
            Case::Plain => "plain".into(),
            Case::Redirect => "redirect".into(),
            Case::InStream => "instream".into(),
            Case::MidText => "midtext".into(),
            Case::Content => "content".into(),
            Case::Cut(n) => format!("cut{n}"),
            Case::Prefix(n) => format!("prefix{n}"),
        }
    }

    fn parse(slug: &str) -> Option<Case> {
        Some(match slug {
            "status" => Case::Status,
            "plain" => Case::Plain,
            "redirect" => Case::Redirect,
            "instream" => Case::InStream,
            "midtext" => Case::MidText,
            "content" => Case::Content,
            _ => match slug.strip_prefix("cut") {
                Some(n) => Case::Cut(n.parse().ok()?),
                None => Case::Prefix(slug.strip_prefix("prefix")?.parse().ok()?),
            },
        })
    }

    fn all(proto: Proto) -> Vec<Case> {
        let len = proto.key().len();
        let mut cases = vec![
            Case::Status,
            Case::Plain,
            Case::Redirect,
            Case::InStream,
            Case::MidText,
        ];
        cases.extend((0..=len + 1).map(Case::Cut));
        cases.extend((1..=len).map(Case::Prefix));
        // Last: it succeeds, which ends a chain.
        cases.push(Case::Content);
        cases
    }
}

struct Hostile {
    thief: u16,
    hits: AtomicUsize,
}

async fn hostile(State(h): State<Arc<Hostile>>, uri: Uri) -> Response {
    h.hits.fetch_add(1, Ordering::Relaxed);
    let path = uri.path();
    let proto = if path.ends_with("/v1/messages") {
        Proto::Anthropic
    } else {
        Proto::Openai
    };
    let slug = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let Some(case) = Case::parse(slug) else {
        return (StatusCode::IM_A_TEAPOT, "unknown case").into_response();
    };
    let soup = soup();
    let key = proto.key();
    let echo = [
        ("request-id", soup.clone()),
        ("x-request-id", soup.clone()),
        ("retry-after", soup.clone()),
        ("x-echo", format!("{key} {TOKEN}")),
    ];
    let error_body = |message: &str| match proto {
        Proto::Anthropic => serde_json::json!({
            "type": "error",
            "error": {"type": soup, "message": message},
            "request_id": soup,
        }),
        Proto::Openai => serde_json::json!({
            "error": {"message": message, "type": soup, "param": soup, "code": soup},
        }),
    };
    let json = |status: u16, body: serde_json::Value| {
        let mut r = (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body.to_string(),
        )
            .into_response();
        for (name, value) in &echo {
            r.headers_mut()
                .insert(*name, value.parse().expect("a header value"));
        }
        r
    };
    let sse = |frames: String| {
        let mut r = (
            StatusCode::OK,
            [("content-type", "text/event-stream")],
            frames,
        )
            .into_response();
        for (name, value) in &echo {
            r.headers_mut()
                .insert(*name, value.parse().expect("a header value"));
        }
        r
    };
    match case {
        Case::Status => json(
            match proto {
                Proto::Anthropic => 401,
                Proto::Openai => 429,
            },
            error_body(&format!("invalid key {soup}")),
        ),
        Case::Plain => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain")],
            format!("upstream trace: {soup}\n"),
        )
            .into_response(),
        Case::Redirect => (
            StatusCode::TEMPORARY_REDIRECT,
            [(
                "location",
                format!("http://127.0.0.1:{}/steal?key={key}&token={TOKEN}", h.thief),
            )],
            format!("moved: {soup}"),
        )
            .into_response(),
        Case::Cut(n) => {
            let message = format!("{}{key} and the rest", "x".repeat(1000 - n));
            json(400, error_body(&message))
        }
        Case::Prefix(n) => json(400, error_body(&format!("bad key: {}", &key[..n]))),
        Case::InStream | Case::MidText | Case::Content => sse(stream(proto, &case)),
    }
}

/// The stream of one of the streaming cases.
fn stream(proto: Proto, case: &Case) -> String {
    let soup = soup();
    let key = proto.key();
    let (head, tail) = key.split_at(key.len() / 2);
    let frame = |event: &str, data: serde_json::Value| match proto {
        Proto::Anthropic => format!("event: {event}\ndata: {data}\n\n"),
        Proto::Openai => format!("data: {data}\n\n"),
    };
    let mut out = String::new();
    match proto {
        Proto::Anthropic => {
            out += &frame(
                "message_start",
                serde_json::json!({"type": "message_start", "message": {
                    "id": soup, "type": "message", "role": "assistant", "model": soup,
                    "content": [], "stop_reason": null,
                    "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            );
        }
        Proto::Openai => {
            out += &frame(
                "",
                serde_json::json!({"id": soup, "object": "chat.completion.chunk", "created": 1,
                    "model": soup, "choices": [{"index": 0, "delta": {"role": "assistant"},
                    "finish_reason": null}]}),
            );
        }
    }
    let text = |text: &str| match proto {
        Proto::Anthropic => frame(
            "content_block_delta",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}}),
        ),
        Proto::Openai => frame(
            "",
            serde_json::json!({"id": soup, "object": "chat.completion.chunk", "created": 1,
                "model": soup, "choices": [{"index": 0, "delta": {"content": text},
                "finish_reason": null}]}),
        ),
    };
    let block_start = frame(
        "content_block_start",
        serde_json::json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
    );
    let error = match proto {
        Proto::Anthropic => frame(
            "error",
            serde_json::json!({"type": "error", "error": {"type": soup, "message": soup},
                "request_id": soup}),
        ),
        Proto::Openai => frame(
            "",
            serde_json::json!({"error": {"message": soup, "type": soup, "param": soup,
                "code": soup}}),
        ),
    };
    match case {
        Case::InStream => out += &error,
        Case::MidText => {
            if proto == Proto::Anthropic {
                out += &block_start;
            }
            out += &text("some text, then ");
            out += &error;
        }
        _ => {
            if proto == Proto::Anthropic {
                out += &block_start;
            }
            out += &text(&format!("the key is {head}"));
            out += &text(&format!("{tail}, the token {TOKEN}."));
            match proto {
                Proto::Anthropic => {
                    out += &frame(
                        "content_block_stop",
                        serde_json::json!({"type": "content_block_stop", "index": 0}),
                    );
                    out += &frame(
                        "content_block_start",
                        serde_json::json!({"type": "content_block_start", "index": 1,
                            "content_block": {"type": "tool_use", "id": soup, "name": soup,
                            "input": {}}}),
                    );
                    out += &frame(
                        "content_block_delta",
                        serde_json::json!({"type": "content_block_delta", "index": 1,
                            "delta": {"type": "input_json_delta",
                            "partial_json": format!("{{\"key\": \"{key}\"}}")}}),
                    );
                    out += &frame(
                        "content_block_stop",
                        serde_json::json!({"type": "content_block_stop", "index": 1}),
                    );
                    out += &frame(
                        "message_delta",
                        serde_json::json!({"type": "message_delta",
                            "delta": {"stop_reason": soup, "stop_sequence": null},
                            "usage": {"output_tokens": 20}}),
                    );
                    out += &frame("message_stop", serde_json::json!({"type": "message_stop"}));
                }
                Proto::Openai => {
                    out += &frame(
                        "",
                        serde_json::json!({"id": soup, "object": "chat.completion.chunk",
                            "created": 1, "model": soup, "choices": [{"index": 0, "delta": {
                            "tool_calls": [{"index": 0, "id": soup, "type": "function",
                            "function": {"name": soup,
                            "arguments": format!("{{\"key\": \"{key}\"}}")}}]},
                            "finish_reason": null}]}),
                    );
                    out += &frame(
                        "",
                        serde_json::json!({"id": soup, "object": "chat.completion.chunk",
                            "created": 1, "model": soup, "choices": [{"index": 0, "delta": {},
                            "finish_reason": soup}]}),
                    );
                    out += &frame(
                        "",
                        serde_json::json!({"id": soup, "object": "chat.completion.chunk",
                            "created": 1, "model": soup, "choices": [],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 20,
                            "total_tokens": 25}}),
                    );
                    out += "data: [DONE]\n\n";
                }
            }
        }
    }
    out
}

/// A server that must never be reached: the redirect's target.
async fn thief(State(hits): State<Arc<AtomicUsize>>) -> &'static str {
    hits.fetch_add(1, Ordering::Relaxed);
    "thank you"
}

struct Servers {
    hostile: Arc<Hostile>,
    thief_hits: Arc<AtomicUsize>,
    hostile_port: u16,
    thief_port: u16,
}

async fn servers() -> Servers {
    let thief_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let thief_port = thief_listener.local_addr().unwrap().port();
    let thief_hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .fallback(thief)
        .with_state(Arc::clone(&thief_hits));
    tokio::spawn(async move { axum::serve(thief_listener, app).await });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hostile_port = listener.local_addr().unwrap().port();
    let state = Arc::new(Hostile {
        thief: thief_port,
        hits: AtomicUsize::new(0),
    });
    let app = Router::new()
        .fallback(hostile)
        .with_state(Arc::clone(&state));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Servers {
        hostile: state,
        thief_hits,
        hostile_port,
        thief_port,
    }
}

/// A provider, chain and route per case and protocol, and the chain `all` through every one;
/// nothing retried, everything failed over, no breaker in the way.
fn config(port: u16) -> (String, Vec<String>) {
    let mut toml = String::new();
    let mut names = Vec::new();
    for proto in [Proto::Anthropic, Proto::Openai] {
        for case in Case::all(proto) {
            let name = format!("{}-{}", proto.name(), case.slug());
            let base = match proto {
                Proto::Anthropic => format!("http://127.0.0.1:{port}/{}", case.slug()),
                Proto::Openai => format!("http://127.0.0.1:{port}/{}/v1", case.slug()),
            };
            toml += &format!(
                "[[providers]]\nname = \"{name}\"\nprotocol = \"{}\"\nmodel = \"m\"\n\
                 base_url = \"{base}\"\n\n",
                proto.name()
            );
            names.push(name);
        }
    }
    // A provider that cannot be reached, with a key in its base URL's query.
    toml += &format!(
        "[[providers]]\nname = \"refused\"\nprotocol = \"openai\"\nmodel = \"m\"\n\
         base_url = \"http://127.0.0.1:1/v1?key={QUERY_KEY}\"\n\n"
    );
    names.insert(0, "refused".to_string());
    for name in &names {
        toml += &format!(
            "[[chains]]\nname = \"{name}\"\ntargets = [\"{name}\"]\n\n\
             [[routes]]\nmodel = \"{name}\"\nchain = \"{name}\"\n\n"
        );
    }
    // Content comes last in each protocol's list; the chain ends at the first success.
    let all: Vec<String> = names
        .iter()
        .filter(|n| !n.ends_with("-content"))
        .chain(names.iter().filter(|n| *n == "openai-content"))
        .map(|n| format!("\"{n}\""))
        .collect();
    toml += &format!(
        "[[chains]]\nname = \"all\"\ntargets = [{}]\n\n",
        all.join(", ")
    );
    toml += &format!(
        "[retry]\nmax_retries = 0\nmax_attempts = {}\n\n[breaker]\nconsecutive_failures = 0\n\
         failure_rate = 1.0\nmin_calls = 1000\n\n",
        names.len() + 1
    );
    for class in [
        "rate_limited",
        "overloaded",
        "server_error",
        "timeout",
        "connect",
        "stalled",
        "stream_cut",
        "malformed",
        "auth",
        "permission",
        "bad_request",
        "context_length",
        "content_filter",
        "not_found",
        "too_large",
        "quota",
        "conflict",
        "redirect",
    ] {
        toml += &format!("[policy.{class}]\nretry = false\nfailover = \"yes\"\n\n");
    }
    (toml, names)
}

fn temp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("secrets_{}_{name}", std::process::id()))
}

fn breakerbox(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breakerbox"));
    cmd.arg("--config")
        .arg(config)
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("XDG_DATA_HOME", temp("data"))
        .env_remove("BREAKERBOX_CONFIG")
        .env_remove("BREAKERBOX_TOKEN")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null());
    cmd
}

/// stdout and stderr of a finished command, labelled.
fn outputs(what: &str, cmd: &mut Command) -> Vec<(String, String)> {
    let out = cmd.output().expect("breakerbox runs");
    vec![
        (
            format!("{what} stdout"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            format!("{what} stderr"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
    ]
}

/// The real `serve --headless`, killed however the test ends.
struct Serve {
    child: Child,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Serve {
    fn start(config: &Path, token_file: &Path, record: &Path) -> Serve {
        let mut child = breakerbox(config)
            .args(["serve", "--headless", "--listen", "127.0.0.1:0"])
            .arg("--token-file")
            .arg(token_file)
            .arg("--record")
            .arg(record)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(Mutex::new(String::new()));
        let mut base = None;
        let mut line = String::new();
        while base.is_none() {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("serve exited before listening:\n{}", log.lock().unwrap());
            }
            log.lock().unwrap().push_str(&line);
            base = line
                .trim()
                .strip_prefix("breakerbox: gateway listening on ")
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string);
        }
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Serve {
            child,
            base: base.unwrap(),
            log,
        }
    }

    /// SIGTERM, then wait: the recording is finished and the log complete.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        // The log thread drains what is left.
        std::thread::sleep(Duration::from_millis(200));
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every client-facing response for `route`: both inbound protocols, streaming and not, with
/// their status and headers.
async fn client_responses(http: &reqwest::Client, base: &str, route: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for stream in [false, true] {
        let anthropic = http
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", TOKEN)
            .header("anthropic-version", "2023-06-01")
            .json(
                &serde_json::json!({"model": route, "max_tokens": 64, "stream": stream,
                "messages": [{"role": "user", "content": "hello"}]}),
            );
        let openai = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"model": route, "stream": stream,
                "messages": [{"role": "user", "content": "hello"}]}));
        for request in [anthropic, openai] {
            let response = request.send().await.expect("the gateway answers");
            let mut text = format!("{} {route} stream={stream}\n", response.status());
            for (name, value) in response.headers() {
                text += &format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes()));
            }
            text += &response.text().await.unwrap_or_else(|e| format!("<{e}>"));
            seen.push(text);
        }
    }
    seen
}

/// The console on `config` in a terminal: a prompt sent down the chain, every screen drawn until it
/// is answered (and the log panel with the failures), then `q`. The screens, and the recording it
/// made by default under `data`.
fn console_session(config: &Path, data: &Path) -> (String, PathBuf) {
    let args = ["--config", config.to_str().unwrap()];
    let env: [(&str, &dyn AsRef<std::ffi::OsStr>); 3] = [
        ("ANTHROPIC_API_KEY", &ANTHROPIC_KEY),
        ("OPENAI_API_KEY", &OPENAI_KEY),
        ("XDG_DATA_HOME", &data),
    ];
    let mut console = crate::support::pty::Console::start_with(&args, 48, 200, &env);
    let mut screens = console.wait_for("providers", Duration::from_secs(20));
    console.keys(b"i");
    console.keys(b"hello");
    console.keys(b"\r");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !screens.contains("the key is <redacted>") {
        assert!(std::time::Instant::now() < deadline, "no reply: {screens}");
        std::thread::sleep(Duration::from_millis(100));
        screens.push_str(&console.contents());
    }
    console.keys(b"\x1b");
    screens.push_str(&console.contents());
    console.keys(b"q");
    assert_eq!(console.exit(Duration::from_secs(10)), 0, "{screens}");
    let sessions = data.join("breakerbox/sessions");
    let recording = std::fs::read_dir(&sessions)
        .expect("the console recorded into its sessions directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .next()
        .expect("a recording");
    (screens, recording)
}

/// The report (markdown and JSON) and the OTLP export of a recording.
fn readers_of(config: &Path, recording: &Path, what: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for args in [
        vec!["--report"],
        vec!["--report", "--format", "json"],
        vec!["--export", "otlp-json"],
    ] {
        let mut cmd = breakerbox(config);
        cmd.arg("replay").arg(recording).args(&args);
        let out = outputs(&format!("replay {what} {}", args.join(" ")), &mut cmd);
        assert!(
            out[0].1.len() > 100,
            "{} wrote next to nothing: {:?}",
            out[0].0,
            out
        );
        all.extend(out);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaves_whatever_the_upstream_echoes() {
    let servers = servers().await;
    let (toml, names) = config(servers.hostile_port);
    let config = temp("config.toml");
    std::fs::write(&config, toml).unwrap();
    let token_file = temp("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (ask_recording, serve_recording) = (temp("ask.jsonl"), temp("serve.jsonl"));
    // What each output may not hold.
    let mut texts: Vec<(String, String, &[&str])> = Vec::new();

    // `ask`, down the whole chain: every case once, the content case answering.
    let ask = {
        let config = config.clone();
        let rec = ask_recording.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = outputs(
                "ask --json",
                breakerbox(&config)
                    .args(["ask", "--chain", "all", "--json", "--record"])
                    .arg(&rec)
                    .arg("hello"),
            );
            all.extend(outputs(
                "ask",
                breakerbox(&config).args(["ask", "--chain", "all", "hello"]),
            ));
            all
        })
    };
    let asked = ask.await.unwrap();
    let ask_text = &asked[2].1;
    assert!(
        ask_text.contains("the key is <redacted>"),
        "the reply came through, redacted: {ask_text}"
    );
    let ask_events = &asked[0].1;
    assert!(
        ask_events.contains(&format!("redirect to 127.0.0.1:{}", servers.thief_port)),
        "the redirect is named with its host: {ask_events}"
    );
    assert!(!ask_events.contains("steal"), "not its path");
    texts.extend(asked.into_iter().map(|(w, t)| (w, t, &ASK_SECRETS[..])));

    // The console, in a terminal, down the same chain: every screen it drew, and its recording.
    let console_config = temp("console.toml");
    let chain_all = std::fs::read_to_string(&config)
        .unwrap()
        .replace("name = \"all\"", "name = \"default\"");
    std::fs::write(&console_config, chain_all).unwrap();
    let console_data = temp("console-data");
    let (screens, console_recording) = tokio::task::spawn_blocking({
        let (config, data) = (console_config.clone(), console_data.clone());
        move || console_session(&config, &data)
    })
    .await
    .unwrap();
    assert!(
        screens.contains("the key is <redacted>"),
        "the console showed the reply, redacted: {screens}"
    );
    texts.push(("console screens".into(), screens, &ASK_SECRETS));
    texts.extend(
        readers_of(&config, &console_recording, "console")
            .into_iter()
            .map(|(w, t)| (w, t, &ASK_SECRETS[..])),
    );
    texts.push((
        "console recording".into(),
        std::fs::read_to_string(&console_recording).unwrap(),
        &ASK_SECRETS,
    ));

    // `serve`: every route, both protocols, streaming and not, while /events is watched.
    let serve = tokio::task::spawn_blocking({
        let config = config.clone();
        let rec = serve_recording.clone();
        move || Serve::start(&config, &token_file, &rec)
    })
    .await
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let watched = Arc::new(Mutex::new(Vec::<u8>::new()));
    let watcher = {
        let request = http
            .get(format!("{}/events", serve.base))
            .bearer_auth(TOKEN)
            .send();
        let watched = Arc::clone(&watched);
        tokio::spawn(async move {
            let mut response = request.await.expect("/events answers");
            assert!(response.status().is_success(), "{}", response.status());
            while let Ok(Some(chunk)) = response.chunk().await {
                watched.lock().unwrap().extend_from_slice(&chunk);
            }
        })
    };
    let mut answered = 0;
    for batch in names.chunks(8) {
        let replies = futures::future::join_all(
            batch
                .iter()
                .map(|route| client_responses(&http, &serve.base, route)),
        )
        .await;
        for (route, reply) in batch.iter().zip(replies) {
            for text in reply {
                if text.starts_with("200") {
                    answered += 1;
                }
                texts.push((format!("serve client {route}"), text, &SERVE_SECRETS));
            }
        }
    }
    // Of the content routes, each of the four request forms got its answer.
    assert!(answered >= 8, "{answered} replies succeeded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    watcher.abort();
    let log = tokio::task::spawn_blocking(move || serve.stop())
        .await
        .unwrap();
    let events = String::from_utf8_lossy(&watched.lock().unwrap()).into_owned();
    assert!(
        events.contains("attempt_failed") && events.contains("<redacted>"),
        "/events saw the failures"
    );
    texts.push(("serve /events".into(), events, &SERVE_SECRETS));
    texts.push(("serve log".into(), log, &SERVE_SECRETS));

    for (what, path, secrets) in [
        ("ask", &ask_recording, &ASK_SECRETS[..]),
        ("serve", &serve_recording, &SERVE_SECRETS[..]),
    ] {
        let recording = std::fs::read_to_string(path).unwrap();
        assert!(
            recording.lines().count() > names.len(),
            "the {what} recording holds the session"
        );
        texts.push((format!("{what} recording"), recording, secrets));
        texts.extend(
            readers_of(&config, path, what)
                .into_iter()
                .map(|(w, t)| (w, t, secrets)),
        );
    }

    let hits = servers.hostile.hits.load(Ordering::Relaxed);
    assert!(
        hits >= names.len() * 5,
        "the hostile server was asked {hits} times"
    );
    assert_eq!(
        servers.thief_hits.load(Ordering::Relaxed),
        0,
        "a redirect was followed"
    );
    let found: Vec<String> = texts
        .iter()
        .flat_map(|(what, text, secrets)| leaks(what, text, secrets))
        .collect();
    assert!(
        found.is_empty(),
        "{} leaks:\n{}",
        found.len(),
        found.join("\n")
    );
    for path in [
        config,
        console_config,
        ask_recording,
        serve_recording,
        temp("token"),
    ] {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_dir_all(console_data);
}

/// The fleet's Redis URL may hold a password: `--redis` with one, to a Redis that is not there.
/// The gateway says it is alone (log, `/events`, `/metrics`, the recording) and names the server
/// by its address only.
#[tokio::test]
async fn the_fleets_redis_password_appears_nowhere() {
    const PASSWORD: &str = "redis-pw-9Tq4Lm2Xv7Kd1Zs8";
    let recording = temp("fleet-secret.jsonl");
    let mut gw = crate::support::gateway::Gateway::start([
        "--redis".to_string(),
        format!("redis://:{PASSWORD}@127.0.0.1:1/0"),
        "--record".to_string(),
        recording.display().to_string(),
    ]);
    let http = crate::support::sim::client();
    // Its first attempt fails at once (nothing listens on port 1): wait for it to say so.
    let metrics = crate::support::scrape::metrics_once(&http, &gw.base, "the fleet lost", |t| {
        t.lines().any(|l| l == "breakerbox_cluster_connected 0")
    })
    .await;
    let mut events = String::new();
    let mut stream = http
        .get(format!("{}/events", gw.base))
        .send()
        .await
        .unwrap();
    while !events.contains("cluster_changed") {
        match tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await {
            Ok(Ok(Some(chunk))) => events.push_str(&String::from_utf8_lossy(&chunk)),
            _ => panic!("no cluster_changed on /events: {events}"),
        }
    }
    drop(stream);
    gw.terminate(Duration::from_secs(10));
    let log = gw.log();
    assert!(
        log.contains("fleet: breakers shared through redis 127.0.0.1:1"),
        "{log}"
    );
    assert!(log.contains("lost redis 127.0.0.1:1"), "{log}");
    let recorded = std::fs::read_to_string(&recording).unwrap();
    assert!(
        recorded.contains("\"cluster\":{"),
        "the header names the fleet"
    );
    for (what, text) in [
        ("the log", &log),
        ("/metrics", &metrics),
        ("/events", &events),
        ("the recording", &recorded),
    ] {
        assert_eq!(leaks(what, text, &[PASSWORD]), Vec::<String>::new());
    }
}
