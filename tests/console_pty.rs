//! The real `breakerbox` console in a pseudo-terminal: it starts, shows the panels, answers a prompt,
//! trips and resets a breaker, and `q` gives the terminal back; so do SIGTERM, SIGINT, SIGHUP and
//! SIGQUIT sent from outside, to every command that runs the console.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROWS: u16 = 48;
const COLS: u16 = 160;

/// A running console and the screen it has drawn so far.
struct Console {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    /// Held for the terminal's settings, which outlive the console.
    master: Box<dyn portable_pty::MasterPty + Send>,
    /// The terminal's settings before the console started (cooked mode, echo on).
    cooked: Option<String>,
    /// Feeds the screen until the console's side of the terminal closes.
    reader: std::thread::JoinHandle<()>,
}

impl Console {
    fn start(args: &[&str], rows: u16, cols: u16) -> Console {
        let pty = native_pty_system();
        let pair = pty
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_breakerbox"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        for var in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "BREAKERBOX_CONFIG",
            "NO_COLOR",
        ] {
            cmd.env_remove(var);
        }
        // The console records by default into the user's data directory: keep that in the test's.
        cmd.env("XDG_DATA_HOME", data_dir());
        let cooked = settings(pair.master.as_ref());
        let child = pair.slave.spawn_command(cmd).expect("breakerbox starts");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a non-zero size");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(size(rows), size(cols), 0)));
        let feed = Arc::clone(&screen);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                feed.lock().expect("screen lock").process(&buf[..n]);
            }
        });
        Console {
            screen,
            writer,
            child,
            master: pair.master,
            cooked,
            reader,
        }
    }

    /// The terminal's settings now.
    fn settings(&self) -> Option<String> {
        settings(self.master.as_ref())
    }

    fn contents(&self) -> String {
        self.screen.lock().expect("screen lock").screen().contents()
    }

    /// Wait until the screen shows `text` (case-insensitive), or fail with the screen.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let needle = text.to_lowercase();
        loop {
            let screen = self.contents();
            if screen.to_lowercase().contains(&needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {text:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the screen no longer shows `text` (case-insensitive).
    fn wait_gone(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let needle = text.to_lowercase();
        while self.contents().to_lowercase().contains(&needle) {
            assert!(
                Instant::now() < deadline,
                "{text:?} stayed; the screen:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("typing");
        self.writer.flush().expect("typing");
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Wait for the process to end and the screen to have everything it wrote; its exit code.
    fn exit(&mut self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait")
                && self.reader.is_finished()
            {
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "the console did not exit:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The terminal is back to normal: main screen, cursor visible, no mouse reporting, and the
    /// tty's settings (line editing, echo, signals: raw mode off) exactly as before.
    fn assert_restored(&self) {
        let parser = self.screen.lock().expect("screen lock");
        let screen = parser.screen();
        assert!(!screen.alternate_screen(), "still on the alternate screen");
        assert!(!screen.hide_cursor(), "the cursor is still hidden");
        assert_eq!(
            screen.mouse_protocol_mode(),
            vt100::MouseProtocolMode::None,
            "mouse still captured"
        );
        assert_eq!(self.settings(), self.cooked, "the tty is still in raw mode");
    }
}

/// A terminal's settings, as the pty's master reads them (`tcgetattr`): every flag and control
/// character. `None` where the platform has no termios.
fn settings(master: &dyn portable_pty::MasterPty) -> Option<String> {
    master.get_termios().map(|t| {
        format!(
            "{:?} {:?} {:?} {:?}",
            t.input_flags, t.output_flags, t.local_flags, t.control_chars
        )
    })
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn the_console_starts_answers_trips_resets_and_quits_cleanly() {
    let mut console = Console::start(&["--demo"], ROWS, COLS);
    let screen = console.wait_for("DEMO", Duration::from_secs(20));
    assert!(
        screen.contains("anthropic") && screen.contains("openai"),
        "{screen}"
    );

    // A prompt, answered. Background load off first, so the reply panel (which follows the newest
    // request) shows ours.
    console.keys(b"l");
    console.keys(b"i");
    console.keys(b"Name three rivers");
    console.keys(b"\r");
    console.wait_for("› Name three rivers", Duration::from_secs(10));
    console.wait_for(PROMPT_ANSWERED, Duration::from_secs(20));

    // Trip the selected breaker (anthropic, the first row): it asks, then it is forced open.
    console.keys(b"\x1b"); // leave the prompt; `o` acts on the selected provider, whatever has focus
    console.keys(b"o");
    console.wait_for("y to confirm", Duration::from_secs(5));
    console.keys(b"y");
    console.wait_for(FORCED_OPEN, Duration::from_secs(5));
    // Reset: back to automatic.
    console.keys(b"r");
    console.wait_gone(FORCED_OPEN, Duration::from_secs(5));
    console.wait_for("reset to automatic", Duration::from_secs(5));

    console.keys(b"q");
    assert_eq!(console.exit(Duration::from_secs(10)), 0);
    console.assert_restored();

    // The session was recorded by default, and the recording holds the prompt's request.
    let sessions = data_dir().join("breakerbox/sessions");
    let recorded: Vec<String> = std::fs::read_dir(&sessions)
        .expect("the sessions directory")
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        recorded.iter().any(
            |text| text.starts_with("{\"format\":\"breakerbox-session\"")
                && text.contains("Name three rivers")
        ),
        "no recording of this session in {}",
        sessions.display()
    );
}

/// Where the tests' consoles keep their data.
fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bb-console-pty-{}", std::process::id()))
}

/// Start the console with `args`, wait until it has taken the terminal over, send it `signal` from
/// outside and wait for it to end; its exit code.
fn signalled(args: &[&str], ready: &str, signal: &str) -> (Console, u32) {
    let mut console = Console::start(args, 24, 80);
    console.wait_for(ready, Duration::from_secs(20));
    let taken = console.settings();
    assert!(
        taken.is_none() || taken != console.cooked,
        "the console runs in raw mode: {taken:?}"
    );
    let pid = console.child.process_id().expect("a pid");
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = console.exit(Duration::from_secs(10));
    (console, code)
}

#[test]
fn sigterm_restores_the_terminal_too() {
    let (console, code) = signalled(&["--demo", "--no-record"], "DEMO", "TERM");
    assert_eq!(code, 0);
    console.assert_restored();
}

#[test]
fn sigint_from_outside_restores_the_terminal() {
    let (console, code) = signalled(&["--demo", "--no-record"], "DEMO", "INT");
    assert_eq!(code, 0);
    console.assert_restored();
}

#[test]
fn sighup_restores_the_terminal() {
    let (console, code) = signalled(&["--demo", "--no-record"], "DEMO", "HUP");
    assert_eq!(code, 0);
    console.assert_restored();
}

#[test]
fn sigquit_restores_the_terminal() {
    let (console, code) = signalled(&["--demo", "--no-record"], "DEMO", "QUIT");
    assert_eq!(code, 0);
    console.assert_restored();
}

/// `serve`'s, `replay`'s and `attach`'s consoles run the same terminal code as the console's: a
/// signal gives the terminal back there too.
#[test]
fn serve_replay_and_attach_restore_the_terminal_on_signals() {
    let serve = ["serve", "--demo", "--listen", "127.0.0.1:0", "--no-record"];
    let (console, code) = signalled(&serve, "SERVE", "INT");
    assert_eq!(code, 0);
    console.assert_restored();

    let dir = data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("one-request.jsonl");
    let header = r#"{"format":"breakerbox-session","format_version":1,"breakerbox_version":"test","started_at":"2026-03-14T12:00:00Z","mode":"demo","providers":[],"config":null,"redacted":false}"#;
    std::fs::write(&path, format!("{header}\n")).unwrap();
    let (console, code) = signalled(&["replay", path.to_str().unwrap()], "REPLAY", "HUP");
    assert_eq!(code, 0);
    console.assert_restored();

    let gateway = Gateway::start();
    let (console, code) = signalled(&["attach", &gateway.base], "anthropic", "INT");
    assert_eq!(code, 0);
    console.assert_restored();
}

/// A headless demo gateway on a free loopback port, for `attach`.
struct Gateway {
    child: std::process::Child,
    base: String,
}

impl Gateway {
    fn start() -> Gateway {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"));
        cmd.args([
            "serve",
            "--demo",
            "--headless",
            "--no-record",
            "--listen",
            "127.0.0.1:0",
        ]);
        for var in ["BREAKERBOX_CONFIG", "BREAKERBOX_TOKEN"] {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gateway starts");
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            assert_ne!(
                stderr.read_line(&mut line).unwrap(),
                0,
                "the gateway exited"
            );
            if let Some(base) = line
                .trim()
                .strip_prefix("breakerbox: gateway listening on ")
                .and_then(|rest| rest.split_whitespace().next())
            {
                break base.to_string();
            }
        };
        // Keep draining its log, so a full pipe never stalls it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Gateway { child, base }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The checks above can fail: a console killed outright (no handler can run) leaves the terminal
/// as it had it.
#[test]
fn a_killed_console_leaves_the_terminal_taken_over() {
    let (console, _) = signalled(&["--demo", "--no-record"], "DEMO", "KILL");
    let screen = console.screen.lock().unwrap();
    assert!(screen.screen().alternate_screen());
    assert!(screen.screen().hide_cursor());
    assert_ne!(
        screen.screen().mouse_protocol_mode(),
        vt100::MouseProtocolMode::None
    );
    assert_ne!(console.settings(), console.cooked, "raw mode stays on");
}

/// What the screen shows once the operator's prompt is answered, and a forced-open breaker.
const PROMPT_ANSWERED: &str = "✓ ok · end_turn";
const FORCED_OPEN: &str = "FORCED OPEN until reset";

/// `replay --redrive`: a recording's prompts sent again through the current configuration, with
/// the console watching them answered.
#[test]
fn redrive_sends_the_recorded_prompts_again() {
    let dir = data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("three-prompts.jsonl");
    let header = r#"{"format":"breakerbox-session","format_version":1,"breakerbox_version":"test","started_at":"2026-03-14T12:00:00Z","mode":"demo","providers":[],"config":null,"redacted":false}"#;
    let mut text = format!("{header}\n");
    for (i, prompt) in ["alpha question", "beta question", "gamma question"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            r#"{{"ts":"2026-03-14T12:00:0{i}.000Z","seq":{},"type":"request_started","request_id":"r{}","source":"prompt","chain":["anthropic"],"prompt":"{prompt}"}}"#,
            i + 1,
            i + 1
        ));
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let mut console = Console::start(
        &[
            "replay",
            path.to_str().unwrap(),
            "--redrive",
            "--asap",
            "--demo",
            "--no-record",
        ],
        ROWS,
        COLS,
    );
    console.wait_for("DEMO", Duration::from_secs(20));
    console.wait_for("requests 3", Duration::from_secs(20));
    // Sent at once, any of them may be the newest in the reply panel.
    console.wait_for(" question", Duration::from_secs(10));
    console.wait_for("answered 3", Duration::from_secs(20));
    console.keys(b"q");
    assert_eq!(console.exit(Duration::from_secs(10)), 0);
}
