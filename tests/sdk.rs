//! The official Python clients (`anthropic`, `openai`) stream from the real `breakerbox sim` binary
//! unchanged, and see each fault as the exception they document (tests/sdk/check_sdks.py).
//!
//! The interpreter is `$BREAKERBOX_SDK_PYTHON` (default `python3`). Without the two packages the
//! test is skipped with a notice, unless `BREAKERBOX_REQUIRE_SDK=1`, which makes it fail (CI).
//! To run it locally:
//!   python3 -m venv /tmp/sdkvenv && /tmp/sdkvenv/bin/pip install -r tests/sdk/requirements.txt
//!   BREAKERBOX_SDK_PYTHON=/tmp/sdkvenv/bin/python cargo test --test sdk -- --nocapture
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the simulator however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn official_sdks_accept_the_simulator() {
    let python = std::env::var("BREAKERBOX_SDK_PYTHON").unwrap_or_else(|_| "python3".into());
    let required = std::env::var("BREAKERBOX_REQUIRE_SDK").is_ok_and(|v| v == "1");
    let import = Command::new(&python)
        .args(["-c", "import anthropic, openai"])
        .output();
    if !import.as_ref().is_ok_and(|o| o.status.success()) {
        let why = match &import {
            // The last line of the traceback says what is missing.
            Ok(o) => String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            !required,
            "BREAKERBOX_REQUIRE_SDK=1 but `{python}` cannot import anthropic and openai: {why}"
        );
        eprintln!(
            "\n*** SKIPPED official_sdks_accept_the_simulator: `{python}` cannot import anthropic \
             and openai ({why}).\n*** Install them: pip install -r tests/sdk/requirements.txt, \
             and point BREAKERBOX_SDK_PYTHON at that interpreter.\n"
        );
        return;
    }

    let mut sim = Running(
        Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--first-event-latency",
                "0ms",
                "--token-delay",
                "1ms",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts"),
    );
    let mut first_line = String::new();
    BufReader::new(sim.0.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let base = first_line
        .trim()
        .strip_prefix("breakerbox sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/check_sdks.py");
    let output = Command::new(&python)
        .arg(script)
        .arg(&base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
