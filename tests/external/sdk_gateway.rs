//! The official clients work against `breakerbox serve` unchanged: pointed at the gateway, the
//! Python (`anthropic`, `openai`) and JS/TS (`@anthropic-ai/sdk`, `openai`) clients get valid
//! replies in their own protocol whichever provider answered, tool calls both ways, and each
//! failure as the exception they document (tests/sdk/check_gateway.py,
//! tests/sdk/js/check_gateway.mjs). Each script gets a fresh demo gateway of the real binary.
//!
//! Python: the interpreter [`crate::needs::python`] finds, with tests/sdk/requirements.txt
//! installed. JS: `node`, with `npm ci --prefix tests/sdk/js` run first. To run it locally:
//!   python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -r tests/sdk/requirements.txt
//!   npm ci --prefix tests/sdk/js
//!   cargo test --test external sdk_gateway::

use crate::gateway::Gateway;
use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The simulated providers without their demo pacing, and retries that do not sleep: the scripts
/// check what the clients see, not how long failover takes. A `retry-after` longer than
/// `retry_after_cap` fails over at once instead of waiting (the scripts send 3 s).
const FAST_CONFIG: &str = r#"
[retry]
min_delay = "10ms"
max_delay = "50ms"
retry_after_cap = "1s"

[sim]
seed = 0

[[sim.providers]]
name = "anthropic"
protocol = "anthropic"
model = "claude-sonnet-4-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
use_tools = true

[[sim.providers]]
name = "openai"
protocol = "openai"
model = "gpt-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
use_tools = true

[[sim.providers]]
name = "responses"
protocol = "openai_responses"
model = "gpt-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0
use_tools = true

[[chains]]
name = "default"
targets = ["anthropic", "openai"]

# A Responses client's same-protocol path (passed through), then across.
[[chains]]
name = "responses"
targets = ["responses", "anthropic"]

# For `x-breakerbox-chain`: a broken reply continued on a second Anthropic target, and that
# target first.
[[sim.providers]]
name = "claude-backup"
protocol = "anthropic"
model = "claude-haiku-4-5"
first_event_latency = "0ms"
token_delay = "1ms"
jitter = 0.0

[[chains]]
name = "spliced"
targets = ["anthropic", "claude-backup"]
mid_stream = "continue"

[[chains]]
name = "backup-first"
targets = ["claude-backup", "anthropic"]

# `default`, and each protocol's own model names (a target of the client's protocol asks for the
# model it named); any other name is a 404 naming the routes.
[[routes]]
model = "default"

[[routes]]
model = "resp"
chain = "responses"

[[routes]]
model = "claude-*"

[[routes]]
model = "gpt-*"
"#;

/// However a script hangs, the test ends.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

/// The demo gateway with the fast config above, written to a file for it.
fn start_gateway(name: &str) -> Gateway {
    let config = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sdk_gateway_{name}_{}.toml", std::process::id()));
    std::fs::write(&config, FAST_CONFIG).unwrap();
    let gateway = Gateway::start([OsStr::new("--config"), config.as_os_str()]);
    let _ = std::fs::remove_file(&config);
    gateway
}

/// Run `command` to completion, or kill it at `deadline`.
fn run_with_deadline(command: &mut Command, deadline: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the script starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            eprintln!("*** the script ran past {deadline:?} and was killed");
            break status;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (output, started.elapsed())
}

/// Run one check script against a fresh gateway and fail with everything it printed.
fn check_against_gateway(name: &str, command: &mut Command) {
    let gateway = start_gateway(name);
    let (output, took) = run_with_deadline(command.arg(&gateway.base), SCRIPT_DEADLINE);
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    println!("{name}: {:.1} s", took.as_secs_f64());
    assert!(
        output.status.success(),
        "the {name} check failed ({}): its FAIL lines:\n{}\n--- its stderr:\n{}\n--- the \
         gateway's log (last lines):\n{}",
        output.status,
        stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&output.stderr),
        gateway.log_tail()
    );
}

pub fn official_python_sdks_work_through_the_gateway(python: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/check_gateway.py");
    check_against_gateway("python", Command::new(python).arg(script));
}

pub fn official_js_sdks_work_through_the_gateway(dir: &Path) {
    check_against_gateway(
        "js",
        Command::new("node")
            .arg(dir.join("check_gateway.mjs"))
            .current_dir(dir),
    );
}
