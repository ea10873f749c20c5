//! The official Google client (`google-genai`) accepts the simulator's Gemini provider unchanged
//! and works through the gateway (tests/sdk/check_gemini.py, against tests/sdk/gemini.toml).

const SDK_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/gemini.toml");

/// Run check_gemini.py in `mode` against `base`, with every line it printed in the failure.
fn check_gemini(python: &str, mode: &str, base: &str, log: impl Fn() -> String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/check_gemini.py");
    let output = std::process::Command::new(python)
        .args([script, mode, base])
        .env_remove("GOOGLE_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .env_remove("GOOGLE_GENAI_API_VERSION")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the google-genai check ({mode}) failed:\n{stdout}\n{}\n--- log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        log()
    );
    assert!(stdout.contains("all passed"), "{stdout}");
}

pub fn google_genai_accepts_the_simulator(python: &str) {
    let sim = crate::sim::Sim::start("tests/sdk/gemini.toml", &[]);
    let base = &sim.base;
    check_gemini(python, "sim", base, String::new);
}

pub fn google_genai_works_through_the_gateway(python: &str) {
    let gateway = crate::gateway::Gateway::start(["--config", SDK_CONFIG]);
    check_gemini(python, "gateway", &gateway.base, || gateway.log_tail());
}
