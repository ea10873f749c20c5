//! AWS's Python SDK (`boto3`, its `bedrock-runtime` client: `converse_stream`, `converse`) accepts
//! the simulator's Bedrock provider with dummy credentials, and works through the gateway
//! (tests/sdk/check_bedrock.py, tests/sdk/check_gateway_bedrock.py).

pub fn boto3_bedrock_runtime_accepts_the_simulator(python: &str) {
    use std::process::Command;
    let sim = crate::sim::Sim::start(
        "tests/sdk/bedrock.toml",
        &["--first-event-latency", "0ms", "--token-delay", "1ms"],
    );
    let base = &sim.base;
    let output = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sdk/check_bedrock.py"
        ))
        .arg(base)
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
