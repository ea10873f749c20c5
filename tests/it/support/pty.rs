//! The real `breakerbox` console in a pseudo-terminal (portable-pty), its screen as a person sees it
//! (vt100): shared by the tests that drive the console.

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the tests' consoles keep their data, unless they say otherwise.
pub fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bb-console-pty-{}", std::process::id()))
}

/// A running console and the screen it has drawn so far.
pub struct Console {
    pub screen: Arc<Mutex<vt100::Parser>>,
    pub writer: Box<dyn Write + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    /// Held for the terminal's settings, which outlive the console.
    pub master: Box<dyn portable_pty::MasterPty + Send>,
    /// The terminal's settings before the console started (cooked mode, echo on).
    pub cooked: Option<String>,
    /// Feeds the screen until the console's side of the terminal closes.
    pub reader: std::thread::JoinHandle<()>,
}

impl Console {
    pub fn start(args: &[&str], rows: u16, cols: u16) -> Console {
        Console::start_with(args, rows, cols, &[("XDG_DATA_HOME", &data_dir())])
    }

    /// [`Console::start`] with these environment variables set (the data directory among them).
    pub fn start_with(
        args: &[&str],
        rows: u16,
        cols: u16,
        env: &[(&str, &dyn AsRef<std::ffi::OsStr>)],
    ) -> Console {
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
        // The console records by default into the user's data directory: the caller says where.
        for (name, value) in env {
            cmd.env(name, value);
        }
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
    pub fn settings(&self) -> Option<String> {
        settings(self.master.as_ref())
    }

    pub fn contents(&self) -> String {
        self.screen.lock().expect("screen lock").screen().contents()
    }

    /// Wait until the screen shows `text` (case-insensitive), or fail with the screen.
    pub fn wait_for(&self, text: &str, within: Duration) -> String {
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
    pub fn wait_gone(&self, text: &str, within: Duration) {
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

    pub fn keys(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("typing");
        self.writer.flush().expect("typing");
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Wait for the process to end and the screen to have everything it wrote; its exit code.
    pub fn exit(&mut self, within: Duration) -> u32 {
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
    pub fn assert_restored(&self) {
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
pub fn settings(master: &dyn portable_pty::MasterPty) -> Option<String> {
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
