//! The real `breakerbox` console in a pseudo-terminal: it starts, shows the panels, answers a prompt,
//! trips and resets a breaker, and `q` gives the terminal back; so do SIGTERM, SIGINT, SIGHUP and
//! SIGQUIT sent from outside, to every command that runs the console.

use crate::support::gateway::Gateway;
use crate::support::pty::{Console, data_dir};
use std::time::Duration;

const ROWS: u16 = 48;
const COLS: u16 = 160;

#[test]
fn the_console_starts_answers_trips_resets_and_quits_cleanly() {
    let mut console = Console::start(&["--demo"], ROWS, COLS);
    console.wait_for("DEMO", Duration::from_secs(20));
    // The first frame may reach the screen in pieces: wait for the providers' rows too.
    console.wait_for("anthropic", Duration::from_secs(5));
    let screen = console.wait_for("openai", Duration::from_secs(5));
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

/// A gateway's console asks before `q` or Ctrl-C stops the gateway, keeps serving on any other
/// key, and Ctrl-C twice quits (giving the terminal back). Its empty reply panel says where agents
/// point, and `/` searches the log while `i` is the prompt.
#[test]
fn serve_asks_before_it_stops_and_slash_searches() {
    let serve = ["serve", "--demo", "--listen", "127.0.0.1:0", "--no-record"];
    let mut console = Console::start(&serve, 30, 100);
    console.wait_for("SERVE", Duration::from_secs(20));
    console.wait_for("OPENAI_BASE_URL=http://127.0.0.1:", Duration::from_secs(5));
    console.keys(b"q");
    console.wait_for("Stop the gateway?", Duration::from_secs(5));
    console.keys(b"n");
    console.wait_gone("Stop the gateway?", Duration::from_secs(5));
    console.wait_for("still serving", Duration::from_secs(5));
    console.keys(b"/");
    console.keys(b"session");
    console.wait_for(" /session", Duration::from_secs(5));
    console.keys(b"\r");
    console.wait_for("event log · /session", Duration::from_secs(5));
    console.keys(b"\x03");
    console.wait_for("Stop the gateway?", Duration::from_secs(5));
    console.keys(b"\x03");
    assert_eq!(console.exit(Duration::from_secs(10)), 0);
    console.assert_restored();
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

    let gateway = Gateway::start(["--no-record"]);
    let (console, code) = signalled(&["attach", &gateway.base], "anthropic", "INT");
    assert_eq!(code, 0);
    console.assert_restored();
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

/// The real binary: Enter opens the selected provider's detail, `y` copies it (the console says
/// what it copied), Esc goes back, and `q` still gives the terminal back.
#[test]
fn enter_opens_a_detail_y_copies_it_and_esc_goes_back() {
    let mut console = Console::start(&["--demo"], ROWS, COLS);
    console.wait_for("DEMO", Duration::from_secs(20));
    console.wait_for("openai", Duration::from_secs(5));
    console.keys(b"\r");
    console.wait_for("provider anthropic", Duration::from_secs(5));
    console.wait_for("Breaker history", Duration::from_secs(5));
    console.keys(b"y");
    console.wait_for("copied provider anthropic", Duration::from_secs(5));
    console.keys(b"\x1b");
    console.wait_gone("Breaker history", Duration::from_secs(5));
    console.keys(b"q");
    assert_eq!(console.exit(Duration::from_secs(10)), 0);
    console.assert_restored();
}
