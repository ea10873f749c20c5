//! The real `breakerbox ask` binary: output, exit status, events, bad input and secrets.

use std::process::{Command, Output};

use crate::support::sim::{self, fast};
use breakerbox::provider::Protocol;
use breakerbox::sim::SimConfig;
use serde_json::Value;

const KEY_VARS: [&str; 5] = [
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "BREAKERBOX_CONFIG",
];

fn breakerbox(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_breakerbox"));
    cmd.args(args);
    for var in KEY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    breakerbox(args).output().expect("breakerbox runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn events(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

#[test]
fn demo_streams_a_complete_reply_and_exits_zero() {
    let out = run(&["ask", "--demo", "Why is the sky blue?"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).split_whitespace().count() >= 5,
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("ok: anthropic"), "{err}");
    assert!(err.contains("stop: end_turn"), "{err}");
}

#[test]
fn json_prints_the_event_vocabulary_in_order() {
    let out = run(&["ask", "--demo", "--json", "Name three rivers."]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let evs = events(&out);
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types[..4],
        [
            "session_started",
            "request_started",
            "attempt_started",
            "first_event"
        ],
        "{types:?}"
    );
    assert_eq!(
        types[types.len() - 2..],
        ["usage", "request_finished"],
        "{types:?}"
    );
    assert!(types.iter().filter(|t| **t == "text_delta").count() >= 5);
    // seq increases, every event has a millisecond timestamp.
    for pair in evs.windows(2) {
        assert!(pair[1]["seq"].as_u64() > pair[0]["seq"].as_u64());
    }
    assert!(
        evs.iter()
            .all(|e| e["ts"].as_str().is_some_and(|t| t.len() == 24))
    );
    let finished = of_type(&evs, "request_finished")[0];
    assert_eq!(finished["outcome"], "ok");
    assert_eq!(finished["provider"], "anthropic");
    assert!(finished["cost_usd"].as_f64().unwrap() > 0.0);
    let usage = of_type(&evs, "usage")[0];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(usage["model"], "claude-sonnet-5-5");
    assert_eq!(of_type(&evs, "session_started")[0]["mode"], "demo");
}

#[test]
fn another_provider_can_be_chosen() {
    let out = run(&["ask", "--demo", "--provider", "openai", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ok: openai (gpt-6.2-sol)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_rate_limit_is_reported_with_its_class_and_retry_after() {
    // A retry-after beyond the cap (30 s) is not waited for; with one provider, the request fails.
    let out = run(&[
        "ask",
        "--demo",
        "--json",
        "--provider",
        "anthropic",
        "--fault",
        "anthropic=rate_limit:retry_after=60s",
        "hello",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let evs = events(&out);
    let failed = of_type(&evs, "attempt_failed");
    assert_eq!(failed.len(), 1, "not retried: {failed:?}");
    assert_eq!(failed[0]["class"], "rate_limited");
    assert_eq!(failed[0]["phase"], "headers");
    assert_eq!(failed[0]["retryable"], true);
    assert_eq!(failed[0]["status"], 429);
    assert_eq!(failed[0]["retry_after_ms"], 60000);
    let finished = of_type(&evs, "request_finished")[0];
    assert_eq!(finished["outcome"], "error");
    assert_eq!(finished["class"], "rate_limited");
    assert!(of_type(&evs, "first_event").is_empty());
}

#[test]
fn the_default_chain_fails_over_to_the_fallback() {
    let out = run(&[
        "ask",
        "--demo",
        "--json",
        "--fault",
        "anthropic=overloaded",
        "hello",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let evs = events(&out);
    let chain = &of_type(&evs, "request_started")[0]["chain"];
    assert_eq!(chain, &serde_json::json!(["anthropic", "openai"]));
    let failed = of_type(&evs, "attempt_failed");
    assert!(
        !failed.is_empty()
            && failed
                .iter()
                .all(|f| f["provider"] == "anthropic" && f["class"] == "overloaded")
    );
    let finished = of_type(&evs, "request_finished")[0];
    assert_eq!(finished["outcome"], "ok");
    assert_eq!(finished["provider"], "openai");
    assert_eq!(finished["attempts"], failed.len() + 1);
}

#[test]
fn a_cut_reply_is_never_a_success() {
    let out = run(&[
        "ask",
        "--demo",
        "--provider",
        "anthropic",
        "--fault",
        "anthropic=stream_cut:after=4",
        "hello",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Into a pipe, only complete answers are written.
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("stream_cut in mid_stream"), "{err}");
    assert!(err.contains("INCOMPLETE"), "{err}");
}

#[test]
fn bad_input_gets_a_clear_error_and_no_panic() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["ask", "--demo", "--fault", "nosuch=stall", "hi"],
            "no simulated provider is named `nosuch`",
        ),
        (
            &["ask", "--demo", "--fault", "anthropic=bogus", "hi"],
            "bogus",
        ),
        (
            &["ask", "--demo", "--fault", "anthropic", "hi"],
            "NAME=KIND",
        ),
        (
            &["ask", "--demo", "--provider", "gemini", "hi"],
            "--provider gemini: no such provider",
        ),
        (
            &["ask", "--config", "/nonexistent/bb.toml", "hi"],
            "/nonexistent/bb.toml",
        ),
        (&["ask", "--fault", "anthropic=stall", "hi"], "add --demo"),
    ];
    for (args, needle) in cases {
        let out = run(args);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn without_keys_it_says_which_variables_to_set() {
    let out = run(&["ask", "hello"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("ANTHROPIC_API_KEY") && err.contains("OPENAI_API_KEY"),
        "{err}"
    );
    assert!(err.contains("--demo"), "{err}");
}

#[test]
fn a_bad_config_names_the_file_and_line() {
    let dir = std::env::temp_dir().join(format!("bb-ask-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[timeouts]\nconnect = \"5\"\n").unwrap();
    let out = run(&["ask", "--demo", "--config", path.to_str().unwrap(), "hi"]);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:2:", path.display())), "{err}");
}

/// A config naming a model the price table does not know: `ask` says "cost unknown", never $0, on
/// its own, as a lower bound beside a priced attempt, in `--count`'s lines and totals, and the
/// `usage` event carries `unpriced: true` with `cost_usd` still there.
#[tokio::test(flavor = "multi_thread")]
async fn a_model_without_a_price_reads_cost_unknown() {
    let sim = sim::start(SimConfig {
        providers: vec![
            fast("anthropic", Protocol::Anthropic),
            fast("openai", Protocol::Openai),
        ],
        seed: 3,
    })
    .await;
    let dir = std::env::temp_dir().join(format!("bb-unpriced-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("local.toml");
    let text = format!(
        "[retry]\nmax_retries = 0\n\n\
         [[providers]]\nname = \"anthropic\"\nprotocol = \"anthropic\"\nmodel = \"claude-sonnet-5-5\"\n\
         base_url = \"{}\"\napi_key_env = \"SIM_KEY\"\n\n\
         [[providers]]\nname = \"local\"\nprotocol = \"openai\"\nmodel = \"llama-3.3-70b\"\n\
         base_url = \"{}\"\napi_key_env = \"SIM_KEY\"\n",
        sim.base_url("anthropic").unwrap(),
        sim.base_url("openai").unwrap()
    );
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap().to_string();
    let ask = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str(), "ask"];
        all.extend_from_slice(args);
        let mut cmd = breakerbox(&all);
        cmd.env("SIM_KEY", "sim");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };

    // Only the unpriced model answers.
    let out = ask(&["--provider", "local", "hi"]).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ok: local (llama-3.3-70b)"), "{err}");
    assert!(err.contains(" · cost unknown · "), "{err}");
    assert!(!err.contains("$0.000000"), "{err}");

    let out = ask(&["--provider", "local", "--json", "hi"]).await.unwrap();
    let evs = events(&out);
    let usage = of_type(&evs, "usage")[0];
    assert_eq!(usage["unpriced"], true, "{usage}");
    assert_eq!(usage["cost_usd"], 0.0, "{usage}");
    let finished = of_type(&evs, "request_finished")[0];
    assert_eq!(finished["unpriced"], true, "{finished}");

    // A priced attempt cut mid-stream, then the unpriced fallback: a lower bound.
    sim::set(&sim, "anthropic", "stream_cut:after=3");
    let out = ask(&["hi"]).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ok: local"), "{err}");
    assert!(err.contains(" (+ unpriced) · stop:"), "{err}");
    assert!(err.contains("· ≥ $0.0"), "{err}");

    // --count: each line and the totals table.
    sim::set(&sim, "anthropic", "none");
    let out = ask(&[
        "--provider",
        "local",
        "--count",
        "2",
        "--interval",
        "0ms",
        "hi",
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("attempts 1")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(|l| l.contains("cost unknown")), "{text}");
    let totals = text.lines().find(|l| l.starts_with("local ")).unwrap();
    // provider, attempts, failed, tokens in, tokens out, cost, of it failed (none: known, $0).
    let cells: Vec<&str> = totals.split_whitespace().collect();
    assert_eq!(cells[5..], ["unknown", "$0.000000"], "{totals}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Real-provider mode against the simulator, with secret keys in the environment: the keys must not
/// appear on stdout, stderr or in the log, even at the most verbose level and on auth failures.
#[tokio::test(flavor = "multi_thread")]
async fn api_keys_never_appear_in_any_output() {
    let sim = sim::start(SimConfig {
        providers: vec![
            fast("anthropic", Protocol::Anthropic),
            fast("openai", Protocol::Openai),
        ],
        seed: 1,
    })
    .await;
    let secrets = ["sk-ant-SECRET-a1b2c3d4e5", "sk-proj-SECRET-f6g7h8i9"];
    let log = std::env::temp_dir().join(format!("bb-keys-{}.log", std::process::id()));
    for fault in ["none", "auth", "bad_request", "stream_cut:after=2", "reset"] {
        for name in ["anthropic", "openai"] {
            sim.set_fault(name, fault.parse().unwrap()).unwrap();
            let sim_anthropic = sim.base_url("anthropic").unwrap();
            let sim_openai = sim.base_url("openai").unwrap();
            let log_arg = log.to_str().unwrap().to_string();
            let name = name.to_string();
            let secrets_env = secrets;
            let out = tokio::task::spawn_blocking(move || {
                breakerbox(&[
                    "ask",
                    "--json",
                    "--provider",
                    &name,
                    "--log-file",
                    &log_arg,
                    "hi",
                ])
                .env("ANTHROPIC_API_KEY", secrets_env[0])
                .env("OPENAI_API_KEY", secrets_env[1])
                .env("ANTHROPIC_BASE_URL", sim_anthropic)
                .env("OPENAI_BASE_URL", sim_openai)
                .env("BREAKERBOX_LOG", "trace")
                .output()
                .unwrap()
            })
            .await
            .unwrap();
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            for secret in secrets {
                for (what, text) in [
                    ("stdout", stdout(&out)),
                    ("stderr", stderr(&out)),
                    ("log", logged.clone()),
                ] {
                    assert!(
                        !text.contains(secret),
                        "{fault}: the key appeared in {what}"
                    );
                    assert!(
                        !text.contains("SECRET"),
                        "{fault}: part of a key appeared in {what}"
                    );
                }
            }
            if fault == "none" {
                assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            }
        }
    }
    let _ = std::fs::remove_file(&log);
}

/// What a hostile upstream puts in its error message and its reply: a window-title change (OSC …
/// BEL), CSI sequences (clear the screen, colour, C1 CSI), a carriage return, and a newline
/// followed by a forged log line.
const HOSTILE: &str = "start\x1b]0;pwned-title\x07 \x1b[2J\x1b[31mred\u{9b}1m over\rwrite\nok: anthropic (forged) · stop: end_turn";

/// A fake Anthropic upstream on 127.0.0.1: under `/error` every request gets a 400 whose message
/// is `HOSTILE`; under `/reply` a streamed reply whose text is `HOSTILE`, split across deltas.
async fn hostile_upstream() -> String {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;
    let error = || async {
        let body = serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": HOSTILE}});
        (StatusCode::BAD_REQUEST, axum::Json(body))
    };
    let reply = || async {
        let frame = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
        let mut sse = frame(
            "message_start",
            serde_json::json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        );
        sse += &frame(
            "content_block_start",
            serde_json::json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
        );
        let chars: Vec<char> = HOSTILE.chars().collect();
        for piece in chars.chunks(3) {
            let text: String = piece.iter().collect();
            sse += &frame(
                "content_block_delta",
                serde_json::json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": text}}),
            );
        }
        sse += &frame(
            "content_block_stop",
            serde_json::json!({"type": "content_block_stop", "index": 0}),
        );
        sse += &frame(
            "message_delta",
            serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                "stop_sequence": null}, "usage": {"output_tokens": 20}}),
        );
        sse += &frame("message_stop", serde_json::json!({"type": "message_stop"}));
        ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response()
    };
    let app = axum::Router::new()
        .route("/error/v1/messages", post(error))
        .route("/reply/v1/messages", post(reply));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// `ask` against the hostile upstream at `base_url`.
fn hostile_ask(base_url: &str) -> Command {
    let mut cmd = breakerbox(&["ask", "--provider", "anthropic", "hi"]);
    cmd.env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("OPENAI_API_KEY", "sk-test")
        .env("ANTHROPIC_BASE_URL", base_url);
    cmd
}

/// No byte that makes a terminal do something: ESC, BEL, C1 controls, CR (but the CR of a
/// terminal's own CR LF). Newlines stay: a reply has lines.
fn assert_inert(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for (i, c) in text.char_indices() {
        let cr_lf = c == '\r' && text[i + 1..].starts_with('\n');
        assert!(
            !c.is_control() || c == '\n' || cr_lf,
            "{what}: a raw {c:?} at byte {i}: {text:?}"
        );
    }
}

/// A log (stderr) where every line is breakerbox's own: none starts with the forged text.
fn assert_no_forged_line(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("ok: anthropic (forged)")),
        "{what}: a forged line: {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstreams_error_text_reaches_stderr_escaped() {
    let base = hostile_upstream().await;
    let out = tokio::task::spawn_blocking(move || {
        hostile_ask(&format!("{base}/error")).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_inert("stderr", &out.stderr);
    assert_no_forged_line("stderr", &out.stderr);
    // Escaped, not dropped: the message is still there to read, on the failure's own line.
    let err = stderr(&out);
    let failed = err.lines().find(|l| l.starts_with("failed: ")).unwrap();
    assert!(
        failed.contains("]0;pwned-title") && failed.contains("ok: anthropic (forged)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_into_a_pipe_is_byte_exact_and_stderr_is_escaped() {
    let base = hostile_upstream().await;
    let out = tokio::task::spawn_blocking(move || {
        hostile_ask(&format!("{base}/reply")).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{HOSTILE}\n"), "the reply as sent");
    assert_inert("stderr", &out.stderr);
    assert_no_forged_line("stderr", &out.stderr);
}

/// On a terminal the streamed reply is escaped too (and so is stderr): nothing reaches the
/// terminal that it would act on, and the text is still there to read. (The reply keeps its
/// newlines, so there its last line is the reply's own.)
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_reply_and_the_error_are_escaped() {
    let base = hostile_upstream().await;
    for (path, code) in [("/reply", 0), ("/error", 1)] {
        let url = format!("{base}{path}");
        let (status, bytes) = tokio::task::spawn_blocking(move || in_a_terminal(&url))
            .await
            .unwrap();
        assert_eq!(status, code, "{path}: {}", String::from_utf8_lossy(&bytes));
        assert_inert(path, &bytes);
        if path == "/error" {
            assert_no_forged_line(path, &bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("]0;pwned-title"), "{path}: {text}");
    }
}

/// `ask` against `base_url` with stdout and stderr on a pseudo-terminal: its exit code and every
/// byte it wrote.
fn in_a_terminal(base_url: &str) -> (u32, Vec<u8>) {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    use std::io::Read;
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_breakerbox"));
    cmd.args(["ask", "--provider", "anthropic", "hi"]);
    for var in KEY_VARS {
        cmd.env_remove(var);
    }
    cmd.env("ANTHROPIC_API_KEY", "sk-ant-test");
    cmd.env("OPENAI_API_KEY", "sk-test");
    cmd.env("ANTHROPIC_BASE_URL", base_url);
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    // Read until the terminal's other side closes (the process ended): every byte it wrote.
    let output = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
        }
        bytes
    });
    let status = child.wait().unwrap();
    let bytes = output.join().unwrap();
    drop(pair.master);
    (status.exit_code(), bytes)
}

/// Outage then recovery against the real simulator: the primary is overloaded for 6 s, then
/// healthy, a request a second. With the default settings its breaker opens, recovery probes go
/// out while it is open, the first answered one turns it half-open, and the primary answers again
/// within seconds of recovering; the probes are at most one per interval (2 s growing to 8 s).
#[test]
fn a_recovered_primary_is_back_within_seconds_and_probes_are_spent_sparingly() {
    let dir = std::env::temp_dir().join(format!("bb-outage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("outage.toml");
    std::fs::write(
        &scenario,
        "name = \"short-outage\"\n\
         [[step]]\nat = \"0s\"\nprovider = \"anthropic\"\nfault = \"overloaded\"\n\
         [[step]]\nat = \"6s\"\nprovider = \"anthropic\"\nfault = \"none\"\n",
    )
    .unwrap();
    let out = run(&[
        "ask",
        "--demo",
        "--json",
        "--scenario",
        scenario.to_str().unwrap(),
        "--count",
        "16",
        "--interval",
        "1s",
        "hi",
    ]);
    let evs = events(&out);
    let ts = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let recovered = of_type(&evs, "fault_changed")
        .into_iter()
        .find(|e| e["provider"] == "anthropic" && e["fault"] == "none")
        .map(ts)
        .expect("the scenario's recovery step");
    let opened = of_type(&evs, "breaker_changed")
        .into_iter()
        .find(|e| e["provider"] == "anthropic" && e["to"] == "open")
        .map(ts)
        .expect("the breaker opened during the outage");
    let back = of_type(&evs, "request_finished")
        .into_iter()
        .find(|e| e["provider"] == "anthropic" && ts(e) > recovered)
        .map(ts)
        .unwrap_or_else(|| panic!("the primary never answered again: {}", stderr(&out)));
    assert!(
        back - recovered <= 10_000,
        "back on the primary {} ms after it recovered",
        back - recovered
    );
    let half_open = of_type(&evs, "breaker_changed")
        .into_iter()
        .find(|e| e["to"] == "half_open")
        .expect("it went half-open");
    assert!(
        half_open["reason"]
            .as_str()
            .unwrap()
            .starts_with("recovery probe"),
        "{half_open}"
    );
    let probes = of_type(&evs, "probe_started");
    let probe_ts: Vec<i64> = probes.iter().map(|e| ts(e)).collect();
    assert!(!probes.is_empty());
    // Probes only while open, at most one per interval (2 s, less 20% jitter).
    assert!(
        probe_ts.iter().all(|t| *t >= opened && *t <= back),
        "{probe_ts:?}"
    );
    assert!(
        probe_ts.windows(2).all(|w| w[1] - w[0] >= 1_500),
        "{probe_ts:?}"
    );
    let answered: Vec<_> = of_type(&evs, "probe_finished")
        .into_iter()
        .filter(|e| e["ok"] == true)
        .collect();
    assert_eq!(answered.len(), 1, "one answered probe ends the probing");
    assert!(
        answered[0]["cost_usd"].as_f64().unwrap() > 0.0,
        "probes are costed"
    );
    std::fs::remove_dir_all(&dir).ok();
}
