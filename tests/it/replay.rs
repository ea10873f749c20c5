//! Replay in the console: the same position gives the same frame however it was reached (played,
//! stepped, jumped back), jumps land on failovers and breaker changes, and bad files are refused
//! clearly.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_textarea::TextArea;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::events::*;
use breakerbox::console::dashboard::Dashboard;
use breakerbox::console::keys::Bindings;
use breakerbox::console::panels::{Facts, View, draw};
use breakerbox::console::replay::{Player, Speed};
use breakerbox::console::ui::Ui;
use breakerbox::event::{Event, EventKind, Mode, Source};
use breakerbox::provider::{ErrorClass, Phase};
use breakerbox::record::{FORMAT, RECORDING_VERSION, SessionHeader};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 12, 0, 0).unwrap()
}

/// Sixty seconds of traffic: a request every second, anthropic failing from 20 s (its breaker opens
/// at 21 s), openai answering.
fn events() -> Vec<Event> {
    let mut out = Timeline::new(t0());
    out.at(0, session_started(Mode::Demo, demo_providers(), Some(2)));
    for i in 0..60i64 {
        let id = &format!("r{}", i + 1);
        let at = 1_000 * i + 100;
        let prompt = format!("question {i}");
        let chain = ["anthropic", "openai"];
        out.at(at, request_started(id, Source::Load, &chain, Some(&prompt)));
        let failing = i >= 20;
        let provider = if failing { "openai" } else { "anthropic" };
        if failing {
            out.at(
                at + 10,
                attempt_started(id, 1, "anthropic", "claude-sonnet-4-5"),
            );
            out.at(
                at + 50,
                EventKind::AttemptFailed {
                    request_id: id.clone(),
                    attempt: 1,
                    provider: "anthropic".into(),
                    phase: Phase::Headers,
                    class: ErrorClass::Overloaded,
                    retryable: true,
                    status: Some(529),
                    retry_after_ms: None,
                    message: "Overloaded".into(),
                    elapsed_ms: 40,
                },
            );
            if i == 21 {
                let reason = "2 consecutive failures";
                out.at(
                    at + 51,
                    breaker_changed("anthropic", "closed", "open", reason, Some(30_000)),
                );
            }
        }
        let n = if failing { 2 } else { 1 };
        out.at(at + 60, attempt_started(id, n, provider, "m"));
        let latency = 240 + (i as u64 % 7) * 10;
        out.at(at + 300, first_event(id, n, provider, latency));
        for w in 0..5 {
            let word = format!("word{w} ");
            out.at(at + 320 + w * 20, text_delta(id, provider, &word));
        }
        out.at(at + 500, usage(id, provider, "m", [10, 5, 0, 0], 0.0001));
        let end = Finished {
            provider: Some(provider),
            stop_reason: Some("end_turn"),
            total_ms: 410,
            cost_usd: 0.0001,
            attempts: n,
            primary_cost_usd: Some(0.0001),
            ..Finished::default()
        };
        out.at(at + 510, request_finished(id, end));
    }
    out.events()
}

fn recording(name: &str, extra: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bb-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let header = SessionHeader {
        format: FORMAT.to_string(),
        format_version: RECORDING_VERSION,
        breakerbox_version: "test".to_string(),
        started_at: t0(),
        mode: Mode::Demo,
        providers: vec![],
        config: serde_json::Value::Null,
        redacted: false,
    };
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "{}", serde_json::to_string(&header).unwrap()).unwrap();
    for (i, e) in events().iter().enumerate() {
        writeln!(file, "{}", serde_json::to_string(e).unwrap()).unwrap();
        if i == 100 {
            for line in extra {
                writeln!(file, "{line}").unwrap();
            }
        }
    }
    path
}

fn frame(dash: &Dashboard, player: &Player) -> String {
    let ui = Ui::default();
    let facts = Facts {
        replay: Some(player.view()),
        ..Facts::default()
    };
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let keys = Bindings::default();
    let prompt = TextArea::default();
    terminal
        .draw(|f| {
            draw(
                f,
                &View {
                    dash,
                    ui: &ui,
                    keys: &keys,
                    prompt: &prompt,
                    facts,
                },
            );
        })
        .unwrap();
    terminal.backend().to_string()
}

/// Wait for the background scan (it learns the length and the marks).
fn scanned(player: &mut Player, dash: &mut Dashboard) {
    for _ in 0..200 {
        player.advance(dash, Duration::ZERO);
        if player.view().total.is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the scan never finished");
}

#[test]
fn the_same_position_gives_the_same_frame_however_it_was_reached() {
    let path = recording("same.jsonl", &[]);
    let target = t0() + TimeDelta::milliseconds(30_400);

    // Straight there.
    let mut a = Player::open(&path, Speed::One).unwrap();
    let mut da = Dashboard::new();
    scanned(&mut a, &mut da);
    a.toggle_pause();
    a.seek(&mut da, target).unwrap();

    // Played at ×10 in 16 ms frames past it, to the end, then back.
    let mut b = Player::open(&path, Speed::Ten).unwrap();
    let mut db = Dashboard::new();
    scanned(&mut b, &mut db);
    for _ in 0..1_000 {
        b.advance(&mut db, Duration::from_millis(16));
    }
    assert!(b.view().position > target);
    b.toggle_pause();
    b.seek(&mut db, target).unwrap();
    // Back to ×1, so the bar's speed label matches the others.
    b.change_speed(false);
    b.change_speed(false);

    // Stepped event by event for a while, then jumped forward.
    let mut c = Player::open(&path, Speed::One).unwrap();
    let mut dc = Dashboard::new();
    scanned(&mut c, &mut dc);
    for _ in 0..150 {
        c.step(&mut dc);
    }
    c.seek(&mut dc, target).unwrap();

    let fa = frame(&da, &a);
    assert!(fa.contains("REPLAY") && fa.contains("OPEN"), "{fa}");
    assert_eq!(fa, frame(&db, &b), "played and rewound");
    assert_eq!(fa, frame(&dc, &c), "stepped and jumped");
    assert_eq!(a.view().applied, c.view().applied);
}

#[test]
fn jumps_land_on_failovers_and_breaker_changes() {
    let path = recording("marks.jsonl", &[]);
    let mut p = Player::open(&path, Speed::One).unwrap();
    let mut d = Dashboard::new();
    scanned(&mut p, &mut d);
    p.toggle_pause();
    // The first failover (r21, 20 s in): attempts > 1.
    assert!(p.jump_to_mark(&mut d, true).unwrap());
    assert_eq!(p.view().position, t0() + TimeDelta::milliseconds(20_610));
    // Next: the breaker opening at 21.151 s.
    assert!(p.jump_to_mark(&mut d, true).unwrap());
    assert_eq!(p.view().position, t0() + TimeDelta::milliseconds(21_151));
    assert_eq!(d.provider("anthropic").unwrap().breaker.as_str(), "open");
    // Back: the failover before it, and the breaker is closed again there.
    assert!(p.jump_to_mark(&mut d, false).unwrap());
    assert_eq!(p.view().position, t0() + TimeDelta::milliseconds(20_610));
    assert_eq!(d.provider("anthropic").unwrap().breaker.as_str(), "closed");
    // ±10 s.
    p.jump(&mut d, 10).unwrap();
    assert_eq!(p.view().position, t0() + TimeDelta::milliseconds(30_610));
}

#[test]
fn unreadable_lines_are_skipped_and_counted() {
    let path = recording("bad-lines.jsonl", &["{not json", "\u{1}\u{2}garbage"]);
    let mut p = Player::open(&path, Speed::Max).unwrap();
    let mut d = Dashboard::new();
    scanned(&mut p, &mut d);
    while p.advance(&mut d, Duration::from_millis(16))
        && p.view().applied < p.view().total.unwrap_or(0)
    {}
    let view = p.view();
    assert_eq!(view.skipped, 2);
    assert!(view.first_warning.unwrap().contains("bad-lines.jsonl:103"));
    assert_eq!(d.totals.answered, 60, "everything else replayed");
}

#[test]
fn replay_refuses_a_file_that_is_not_a_recording_clearly() {
    let dir = std::env::temp_dir().join(format!("bb-replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.jsonl", b"", "empty"),
        (
            "cargo.toml",
            b"[package]\nname = \"x\"\n",
            "not a breakerbox recording",
        ),
        (
            "garbage.bin",
            &[0xff, 0xfe, 0x00, 0x13, 0x37, b'\n'],
            "not a breakerbox recording",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args(["replay", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

/// `replay` on an input that never ends: a clear error, not a wait for ever. (`/dev/zero` is on
/// every Linux and macOS; the garbage stream goes through a pipe, like `<(…)` would.)
#[test]
fn an_endless_input_is_an_error_not_a_wait() {
    for mode in ["--report", "--export=otlp-json"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"))
            .args(["replay", "/dev/zero", mode])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{mode}: {err}");
        assert!(err.contains("no line break"), "{mode}: {err}");
    }
    // A recording's start, then lines of garbage for ever (through a pipe).
    let header = recording("endless", &[]);
    let start = std::fs::read(&header).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"))
        .args(["replay", "/dev/stdin", "--report"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let garbage = "not an event\n".repeat(1000);
        // Ends when breakerbox stops reading (a broken pipe).
        if stdin.write_all(&start).is_ok() {
            while stdin.write_all(garbage.as_bytes()).is_ok() {}
        }
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("lines were not events"), "{err}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("# "),
        "the report of what came before: {report}"
    );
}

fn press(c: char) -> ratatui::crossterm::event::KeyEvent {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// The replay's keys are bindings: space pauses (the live freeze's key, never read in a replay),
/// they can be rebound, and a live key in a replay says why it does nothing.
#[test]
fn replay_keys_are_bindings() {
    use breakerbox::console::app::App;
    use breakerbox::console::keys::KeyList;
    let path = recording("keys.jsonl", &[]);
    let player = Player::open(&path, Speed::One).unwrap();
    let mut app = App::replay(Ui::default(), Bindings::default(), player);
    assert!(!app.facts().replay.unwrap().paused);
    app.on_key(&press(' '));
    assert!(app.facts().replay.unwrap().paused);
    assert!(
        !app.is_frozen(),
        "space is the replay's pause, not the freeze"
    );
    app.on_key(&press('o'));
    assert_eq!(app.ui.flash.as_deref(), Some("a replay is read-only"));

    let mut keys = std::collections::BTreeMap::new();
    keys.insert("replay_pause".to_string(), KeyList(vec!["p".into()]));
    keys.insert("freeze".to_string(), KeyList(vec!["z".into()]));
    let keys = Bindings::with_overrides(&keys).unwrap();
    let player = Player::open(&path, Speed::One).unwrap();
    let mut app = App::replay(Ui::default(), keys, player);
    app.on_key(&press(' '));
    assert!(
        !app.facts().replay.unwrap().paused,
        "space is no longer bound"
    );
    app.on_key(&press('p'));
    assert!(app.facts().replay.unwrap().paused);
    app.on_key(&press('z'));
    assert!(!app.is_frozen());
    assert_eq!(app.ui.flash.as_deref(), Some("a replay pauses with p"));
}
