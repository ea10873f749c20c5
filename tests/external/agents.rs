//! Real agents work through `breakerbox serve --demo` with nothing but a base URL and a fake key:
//! Claude Code (`claude -p`, its default model, running a Bash command the simulated model asks
//! for), Codex CLI (`codex exec`, its default model) and the OpenAI Agents SDK (its default model,
//! a function tool). Each answers with what the simulator said, and still does with
//! `--fault anthropic=overloaded`, the gateway's `/events` showing the failover it never saw.
//!
//! The agents are installed at pinned versions by `.ci/run`: `npm ci --prefix tests/agents`
//! (Claude Code and Codex under tests/agents/node_modules/.bin) and tests/agents/requirements.txt
//! into `target/sdk-venv`. Each agent runs with a clean environment (`PATH` only, of the caller's),
//! a fresh HOME and config directory, telemetry and updates off, and is killed after
//! [`AGENT_DEADLINE`]. To run it locally:
//!   npm ci --prefix tests/agents
//!   python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -r tests/sdk/requirements.txt -r tests/agents/requirements.txt
//!   cargo test --test external agents::

use crate::Checks;
use crate::gateway::Gateway;
use crate::needs::Missing;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// However an agent hangs (a retry loop, a prompt for input), the test ends.
const AGENT_DEADLINE: Duration = Duration::from_secs(60);

/// The fault that makes every request fail over: the primary answers 529 until its breaker opens.
const OVERLOADED: &str = "anthropic=overloaded";

/// What the Bash command the simulated model is asked to run leaves behind.
const PROOF: &str = "proof.txt";

fn agents_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/agents"))
}

/// The demo gateway, with `faults` as `--fault` takes them.
fn start_gateway(faults: &[&str]) -> Gateway {
    Gateway::start(faults.iter().flat_map(|fault| ["--fault", fault]))
}

/// Every event so far, from `/events` (its history, sent at once to a new watcher).
fn events(gateway: &Gateway) -> Vec<Value> {
    let addr = gateway.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("the gateway accepts");
    // HTTP/1.0: the body is not chunked, so its lines can be read as they come.
    write!(stream, "GET /events HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut body = Vec::new();
    let mut buf = [0u8; 65536];
    let started = Instant::now();
    // The history arrives at once; then the stream goes quiet (the read times out).
    while started.elapsed() < Duration::from_secs(10) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter(|e| e.get("seq").is_some())
        .collect()
}

/// What the gateway did for its requests, from its events.
#[derive(Debug)]
struct Served {
    /// Each request's `request_finished`, in order.
    finished: Vec<Value>,
    /// The reply text each request streamed (its `text_delta`s), in the same order.
    texts: Vec<String>,
    /// Every `attempt_failed`.
    failed_attempts: Vec<Value>,
}

fn served(events: &[Value]) -> Served {
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let finished = of("request_finished");
    let texts = finished
        .iter()
        .map(|f| {
            events
                .iter()
                .filter(|e| e["type"] == "text_delta" && e["request_id"] == f["request_id"])
                .filter_map(|e| e["text"].as_str())
                .collect::<String>()
        })
        .collect();
    Served {
        finished,
        texts,
        failed_attempts: of("attempt_failed"),
    }
}

/// A fresh, empty directory for one agent run: its HOME, config and working directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("agents-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["home", "work"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    dir
}

/// An agent's command with nothing of the caller's environment but `PATH` (node and the shell
/// need it), HOME and the temporary directory inside `dir`, and the working directory `dir/work`.
fn isolated(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("TMPDIR", dir.join("home"))
        .env("NO_COLOR", "1")
        .current_dir(dir.join("work"));
    command
}

/// Run `command` to completion, or kill it at [`AGENT_DEADLINE`] and fail saying so.
fn run(name: &str, command: &mut Command, gateway: &Gateway) -> Output {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
        rx
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > AGENT_DEADLINE {
            let _ = child.kill();
            timed_out = true;
            break child.wait().unwrap();
        }
        thread::sleep(Duration::from_millis(20));
    };
    // An agent's own children (a tool's shell) may hold its pipes open after it ends: wait a
    // little for the rest of its output, not forever.
    let rest =
        |rx: mpsc::Receiver<Vec<u8>>| rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    let output = Output {
        status,
        stdout: rest(stdout),
        stderr: rest(stderr),
    };
    println!(
        "{name}: {} in {:.1} s\n--- stdout:\n{}\n--- stderr:\n{}",
        output.status,
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !timed_out,
        "{name} ran past {AGENT_DEADLINE:?} and was killed; the gateway's log:\n{}",
        gateway.log()
    );
    assert!(
        output.status.success(),
        "{name} failed ({}); its stderr:\n{}\n--- the gateway's log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        gateway.log()
    );
    output
}

/// Every request was answered, by the fallback after the primary failed when `failover`, else by
/// the primary alone; and `answer` is what the last one streamed.
fn assert_served(name: &str, gateway: &Gateway, answer: &str, failover: bool) -> Served {
    let served = served(&events(gateway));
    let log = gateway.log();
    assert!(
        !served.finished.is_empty(),
        "{name}: no request reached the gateway:\n{log}"
    );
    for f in &served.finished {
        assert_eq!(f["outcome"], "ok", "{name}: {f}\n{log}");
        let expected = if failover { "openai" } else { "anthropic" };
        assert_eq!(f["provider"], expected, "{name}: {f}\n{log}");
    }
    if failover {
        assert!(
            served
                .failed_attempts
                .iter()
                .any(|a| a["provider"] == "anthropic"),
            "{name}: no failed attempt on anthropic in /events:\n{log}"
        );
        assert!(log.contains("answered by openai"), "{log}");
    } else {
        assert!(served.failed_attempts.is_empty(), "{name}: {served:?}");
    }
    let last = served.texts.last().unwrap();
    assert!(
        !last.trim().is_empty(),
        "{name}: the last reply had no text: {served:?}"
    );
    assert_eq!(
        answer.trim(),
        last.trim(),
        "{name} answers with what the simulator said"
    );
    served
}

// --- Claude Code ----------------------------------------------------------------------------

fn claude_code(test: &str, claude: &Path, faults: &[&str]) {
    let gateway = start_gateway(faults);
    let dir = scratch(test);
    let mut command = isolated(claude, &dir);
    command
        .env("ANTHROPIC_BASE_URL", &gateway.base)
        .env("ANTHROPIC_API_KEY", "sk-ant-fake-key-for-breakerbox-tests")
        .env("CLAUDE_CONFIG_DIR", dir.join("home/.claude"))
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        // The simulated model calls the tool the prompt names with the value it quotes.
        .args([
            "-p",
            &format!("Use the Bash tool to run `echo tool-ran > {PROOF}`"),
        ])
        .args(["--allowedTools", "Bash", "--output-format", "json"]);
    let output = run("claude -p", &mut command, &gateway);
    let result: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("claude -p --output-format json printed no JSON: {e}"));
    assert_eq!(result["is_error"], false, "{result}");
    assert_eq!(
        result["num_turns"], 2,
        "a tool call, then the answer: {result}"
    );
    let proof = std::fs::read_to_string(dir.join("work").join(PROOF))
        .unwrap_or_else(|e| panic!("the Bash tool did not run ({PROOF}: {e}): {result}"));
    assert_eq!(proof.trim(), "tool-ran");

    let served = assert_served(
        "claude -p",
        &gateway,
        result["result"].as_str().unwrap_or_default(),
        !faults.is_empty(),
    );
    assert_eq!(served.finished.len(), 2, "{served:?}");
    assert_eq!(served.finished[0]["stop_reason"], "tool_use");
    assert_eq!(served.finished[1]["stop_reason"], "end_turn");
    let _ = std::fs::remove_dir_all(&dir);
}

// --- Codex CLI ------------------------------------------------------------------------------

fn codex_exec(test: &str, codex: &Path, faults: &[&str]) {
    let gateway = start_gateway(faults);
    let dir = scratch(test);
    let codex_home = dir.join("home/.codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    // A provider of Codex's own kind: the gateway's base URL and the variable naming the key.
    std::fs::write(
        codex_home.join("config.toml"),
        format!(
            r#"model_provider = "breakerbox"
check_for_update_on_startup = false

[analytics]
enabled = false

[model_providers.breakerbox]
name = "breakerbox"
base_url = "{}/v1"
env_key = "BREAKERBOX_TEST_KEY"
wire_api = "responses"
"#,
            gateway.base
        ),
    )
    .unwrap();
    let last = dir.join("last-message.txt");
    let mut command = isolated(codex, &dir);
    command
        .env("CODEX_HOME", &codex_home)
        .env("BREAKERBOX_TEST_KEY", "sk-fake-key-for-breakerbox-tests")
        .args([
            "exec",
            "--strict-config",
            "--skip-git-repo-check",
            "--ephemeral",
        ])
        .args(["--color", "never", "--output-last-message"])
        .arg(&last)
        .arg("Why is the sky blue?");
    run("codex exec", &mut command, &gateway);
    let answer = std::fs::read_to_string(&last)
        .unwrap_or_else(|e| panic!("codex wrote no last message ({}): {e}", last.display()));
    assert_served("codex exec", &gateway, &answer, !faults.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

// --- OpenAI Agents SDK ----------------------------------------------------------------------

fn agents_sdk(test: &str, python: &str, faults: &[&str]) {
    let gateway = start_gateway(faults);
    let dir = scratch(test);
    let mut command = isolated(python, &dir);
    command
        .env("OPENAI_BASE_URL", format!("{}/v1", gateway.base))
        .env("OPENAI_API_KEY", "sk-fake-key-for-breakerbox-tests")
        .env("OPENAI_AGENTS_DISABLE_TRACING", "1")
        .arg(agents_dir().join("agents_sdk.py"));
    let output = run("the Agents SDK", &mut command, &gateway);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("TOOL CALLED: "),
        "the agent's tool ran: {stdout}"
    );
    let answer = stdout
        .split_once("FINAL: ")
        .map(|(_, answer)| answer)
        .unwrap_or_else(|| panic!("no final answer: {stdout}"));
    let served = assert_served("the Agents SDK", &gateway, answer, !faults.is_empty());
    assert_eq!(
        served.finished.len(),
        2,
        "a tool call, then the answer: {served:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The six checks: each agent answering, and answering through a failover it never sees.
pub fn register(
    checks: &mut Checks,
    claude: &Result<PathBuf, Missing>,
    codex: &Result<PathBuf, Missing>,
    python: &Result<String, Missing>,
) {
    for (name, faults) in [
        (
            "claude_code_runs_a_tool_and_answers_through_the_gateway",
            &[][..],
        ),
        ("claude_code_fails_over_invisibly", &[OVERLOADED][..]),
    ] {
        checks.add(&format!("agents::{name}"), claude, move |bin| {
            claude_code(name, &bin, faults)
        });
    }
    for (name, faults) in [
        ("codex_exec_answers_through_the_gateway", &[][..]),
        ("codex_exec_fails_over_invisibly", &[OVERLOADED][..]),
    ] {
        checks.add(&format!("agents::{name}"), codex, move |bin| {
            codex_exec(name, &bin, faults)
        });
    }
    for (name, faults) in [
        (
            "agents_sdk_default_model_answers_through_the_gateway",
            &[][..],
        ),
        (
            "agents_sdk_default_model_fails_over_invisibly",
            &[OVERLOADED][..],
        ),
    ] {
        checks.add(&format!("agents::{name}"), python, move |py| {
            agents_sdk(name, &py, faults)
        });
    }
}
