//! The official Google client (`google-genai`) accepts the simulator's Gemini provider unchanged
//! and works through the gateway (tests/sdk/check_gemini.py, against tests/sdk/gemini.toml).

/// Kills a process however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    use std::io::{BufRead, BufReader};
    let mut sim = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args(["sim", "--config", SDK_CONFIG, "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("the binary starts"),
    );
    let mut first = String::new();
    BufReader::new(sim.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("breakerbox sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    check_gemini(python, "sim", &base, String::new);
}

pub fn google_genai_works_through_the_gateway(python: &str) {
    let gateway = crate::gateway::Gateway::start(["--config", SDK_CONFIG]);
    check_gemini(python, "gateway", &gateway.base, || gateway.log_tail());
}
