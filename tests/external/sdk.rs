//! The official Python clients (`anthropic`, `openai`: Chat Completions and the Responses API)
//! stream from the real `breakerbox sim` binary unchanged, and see each fault as the exception they
//! document (tests/sdk/check_sdks.py, against the providers of tests/sdk/sim.toml).
//!
//! The interpreter is found as [`crate::needs::python`] says. To run it locally:
//!   python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -r tests/sdk/requirements.txt
//!   cargo test --test external sdk::

use crate::sim::Sim;
use std::process::Command;

pub fn official_sdks_accept_the_simulator(python: &str) {
    let sim = Sim::start(
        "tests/sdk/sim.toml",
        &["--first-event-latency", "0ms", "--token-delay", "1ms"],
    );
    let base = &sim.base;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/check_sdks.py");
    let output = Command::new(python).arg(script).arg(base).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
