//! The official Python clients (`anthropic`, `openai`: Chat Completions and the Responses API)
//! stream from the real `breakerbox sim` binary unchanged, and see each fault as the exception they
//! document (tests/sdk/check_sdks.py, against the providers of tests/sdk/sim.toml).
//!
//! The interpreter is found as [`crate::needs::python`] says. To run it locally:
//!   python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -r tests/sdk/requirements.txt
//!   cargo test --test external sdk::

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

pub fn official_sdks_accept_the_simulator(python: &str) {
    let mut sim = Running(
        Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args([
                "sim",
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/sim.toml"),
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
    let output = Command::new(python)
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
