//! AWS's Python SDK (`boto3`, its `bedrock-runtime` client: `converse_stream`, `converse`) accepts
//! the simulator's Bedrock provider with dummy credentials, and works through the gateway
//! (tests/sdk/check_bedrock.py, tests/sdk/check_gateway_bedrock.py).

/// Kills the simulator however the test ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn boto3_bedrock_runtime_accepts_the_simulator(python: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut sim = Running(
        Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args([
                "sim",
                "--config",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/bedrock.toml"),
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
    let output = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/check_bedrock.py"
        ))
        .arg(&base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("all Bedrock checks passed"),
        "the boto3 check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn boto3_bedrock_runtime_works_through_the_gateway(python: &str) {
    let gateway = crate::gateway::Gateway::start([
        "--config",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/gateway_bedrock.toml"
        ),
    ]);
    let output = std::process::Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/check_gateway_bedrock.py"
        ))
        .arg(&gateway.base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("all Bedrock gateway checks passed"),
        "the boto3 gateway check failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        gateway.log_tail()
    );
}
