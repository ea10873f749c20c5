//! The real `breakerbox sim` binary on a free loopback port, for the official clients' checks.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running simulator, killed however the check ends.
pub struct Sim {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Sim {
    /// `breakerbox sim --config CONFIG --listen 127.0.0.1:0 ARGS…` (`CONFIG` below the
    /// manifest's directory); returns once it listens.
    pub fn start(config: &str, args: &[&str]) -> Sim {
        let config = format!("{}/{config}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args(["sim", "--config", &config, "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first_line)
            .unwrap();
        let base = first_line
            .trim()
            .strip_prefix("breakerbox sim listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
            .to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Sim { child, base }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
