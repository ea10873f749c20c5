//! A demo gateway of the real binary (`breakerbox serve --demo --headless`), for the tests that
//! drive it from outside: the official SDKs' scripts, the real agents, `attach` and recordings.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Killed however the test ends.
pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything it wrote to stderr, for a failure message.
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// `breakerbox serve --demo --headless --listen 127.0.0.1:0 ARGS…`, with no config, token or
    /// provider key from the environment; returns once it listens.
    pub fn start<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args(["serve", "--demo", "--headless", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("BREAKERBOX_CONFIG")
            .env_remove("BREAKERBOX_TOKEN")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let log = Arc::new(Mutex::new(String::new()));
        let mut base = None;
        let mut line = String::new();
        while base.is_none() {
            line.clear();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.kill();
                panic!("the gateway exited before listening:\n{}", lock(&log));
            }
            lock(&log).push_str(&line);
            base = line
                .trim()
                .strip_prefix("breakerbox: gateway listening on ")
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string);
        }
        // Keep reading: the headless gateway logs every request to stderr, and a full pipe
        // would stall it.
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let mut log = lock(&sink);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = base.unwrap_or_default();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Gateway { child, base, log }
    }

    /// Send it SIGTERM, as a service manager stops it, and wait until it has exited.
    pub fn terminate(&mut self, within: Duration) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + within;
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "the gateway did not stop:\n{}",
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        lock(&self.log).clone()
    }

    /// The end of its log.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn lock(log: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
