//! Replay in the console: the same position gives the same frame however it was reached (played,
//! stepped, jumped back), jumps land on failovers and breaker changes (and pause there), the bar
//! marks them, and bad files are refused clearly. Frames of the console driven by keys are exact:
//! a replay's time is the recording's.

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
use breakerbox::console::replay::{Landed, MarkKind, Player, Speed};
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
            unpriced: false,
            ..Finished::default()
        };
        out.at(at + 510, request_finished(id, end));
    }
    // The operator trips openai at 45 s, and resets it at 50 s.
    out.at(45_000, operator_action("trip", Some("openai"), ""));
    let reason = "tripped by the operator";
    out.at(
        45_000,
        breaker_changed("openai", "closed", "forced_open", reason, None),
    );
    out.at(50_000, operator_action("reset", Some("openai"), ""));
    let reason = "reset by the operator";
    out.at(
        50_000,
        breaker_changed("openai", "forced_open", "closed", reason, None),
    );
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
    // Up to 20 s: the scan runs on a thread of its own, which a loaded machine may starve.
    for _ in 0..2_000 {
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
        c.step(&mut dc, None);
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
    let ms = |ms: i64| t0() + TimeDelta::milliseconds(ms);
    let jump = |p: &mut Player, d: &mut Dashboard, kind, forward| {
        let landed = p.jump_to_mark(d, kind, forward).unwrap();
        (landed, p.view().position)
    };
    // The first failover: r21 moving to openai, 20.16 s in.
    let (landed, at) = jump(&mut p, &mut d, MarkKind::Failover, true);
    assert!(
        matches!(landed, Landed::Failover(ref m) if m.request_id == "r21"),
        "{landed:?}"
    );
    assert_eq!(at, ms(20_160));
    assert!(p.view().paused);
    // The next breaker change: anthropic's opening at 21.151 s.
    let (landed, at) = jump(&mut p, &mut d, MarkKind::BreakerChange, true);
    assert!(matches!(landed, Landed::Breaker(ref m) if m.provider == "anthropic"));
    assert_eq!(at, ms(21_151));
    // The next failover is r22's, just after.
    let (landed, at) = jump(&mut p, &mut d, MarkKind::Failover, true);
    assert!(matches!(landed, Landed::Failover(ref m) if m.request_id == "r22"));
    assert_eq!(at, ms(21_160));
    // Back: the failover before it, and the breaker is closed again there.
    let (_, at) = jump(&mut p, &mut d, MarkKind::Failover, false);
    assert_eq!(at, ms(20_160));
    assert_eq!(d.provider("anthropic").unwrap().breaker.as_str(), "closed");
    let (landed, at) = jump(&mut p, &mut d, MarkKind::BreakerChange, false);
    assert_eq!(
        landed,
        Landed::Nothing {
            kind: MarkKind::BreakerChange,
            forward: false
        }
    );
    assert_eq!(at, ms(20_160));
    // ±10 s.
    p.jump(&mut d, 10).unwrap();
    assert_eq!(p.view().position, ms(30_160));
    // The operator's trip of openai at 45 s is a breaker change too.
    let (landed, at) = jump(&mut p, &mut d, MarkKind::BreakerChange, true);
    assert!(matches!(landed, Landed::Breaker(ref m) if m.provider == "openai"));
    assert_eq!(at, ms(45_000));
    let marks = p.view().marks;
    assert_eq!(
        (marks.failovers.len(), marks.operator_actions.len()),
        (40, 2)
    );
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
    keys.insert("freeze".to_string(), KeyList(vec!["x".into()]));
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
    app.on_key(&press('x'));
    assert!(!app.is_frozen());
    assert_eq!(app.ui.flash.as_deref(), Some("a replay pauses with p"));

    // Focus goes round the panels but never to a prompt a replay does not have, so `q` still
    // quits from anywhere.
    use breakerbox::console::ui::Focus;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};
    let mut seen = Vec::new();
    for _ in 0..5 {
        app.on_key(&key(KeyCode::Tab));
        seen.push(app.ui.focus);
    }
    app.on_key(&ratatui::crossterm::event::KeyEvent::new(
        KeyCode::BackTab,
        KeyModifiers::SHIFT,
    ));
    seen.push(app.ui.focus);
    assert!(!seen.contains(&Focus::Prompt), "{seen:?}");
    assert_eq!(
        seen[..4],
        [Focus::Requests, Focus::Reply, Focus::Log, Focus::Providers]
    );
    app.on_key(&press('q'));
    assert!(app.should_quit());
}

// ---- The console on a replay, driven by keys ----

use breakerbox::console::app::App;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/recordings/demo-incident.jsonl"
);

fn key(code: ratatui::crossterm::event::KeyCode) -> ratatui::crossterm::event::KeyEvent {
    ratatui::crossterm::event::KeyEvent::new(code, ratatui::crossterm::event::KeyModifiers::NONE)
}

/// A replay's console, its file scanned. It plays at the speed given, but frames here let no time
/// pass: where it stands is where the keys took it.
fn console(path: &str, speed: Speed, color: bool) -> App {
    let player = Player::open(std::path::Path::new(path), speed).unwrap();
    let ui = Ui {
        color,
        ..Ui::default()
    };
    let mut app = App::replay(ui, Bindings::default(), player);
    settle(&mut app);
    app
}

/// Frames until the file is scanned and the last key's move is done.
fn settle(app: &mut App) {
    for _ in 0..1_000 {
        app.advance_replay(Duration::ZERO);
        let replay = app.facts().replay.unwrap();
        if replay.total.is_some() && !replay.moving {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the replay never settled: {:?}", app.facts().replay);
}

fn type_keys(app: &mut App, keys: &[char]) {
    for c in keys {
        app.on_key(&press(*c));
        settle(app);
    }
}

fn screen(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| app.draw(f)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let width = usize::from(buffer.area.width);
    let cells: Vec<&str> = buffer.content.iter().map(|c| c.symbol()).collect();
    cells
        .chunks(width)
        .map(|row| row.concat().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The row of the bar: the one that holds the position label.
fn bar_row(buffer: &Buffer) -> u16 {
    (0..buffer.area.height)
        .find(|y| {
            let row: String = (0..buffer.area.width)
                .map(|x| buffer[(x, *y)].symbol().to_string())
                .collect();
            row.contains("event ") && row.contains(" / ")
        })
        .expect("a replay bar")
}

/// In the demo incident the first `]` lands on a failover (the engine's: answered by another
/// provider than the primary), not on the retries on anthropic before it; there are as many
/// failover marks as the recording has failovers.
#[test]
fn in_the_demo_incident_the_first_failover_jump_lands_on_a_failover() {
    let mut app = console(DEMO, Speed::One, true);
    let marks = app.facts().replay.unwrap().marks;
    assert_eq!(
        marks.failovers.len(),
        151,
        "151 of 250 requests failed over"
    );
    assert_eq!(marks.breakers.len(), 8);
    type_keys(&mut app, &[']']);
    let picked = app
        .ui
        .selected_request
        .clone()
        .expect("the failover's request is picked");
    let request = app.live.request(&picked).unwrap();
    let primary = request.chain.first().unwrap();
    let last = request.attempts.last().unwrap();
    assert_ne!(&last.provider, primary, "{request:?}");
    let replay = app.facts().replay.unwrap();
    assert!(replay.paused);
    assert_eq!(replay.position, marks.failovers[0].at);
    // It is r35, steered past the throttled primary, and not r34 before it, which met a 429 on
    // anthropic and is still waiting out its retry-after there (a retry, not a failover).
    assert_eq!(picked, "r35");
    let r34 = app.live.request("r34").unwrap();
    assert!(r34.total_ms.is_none(), "{r34:?}");
    assert!(
        r34.attempts.iter().all(|a| a.provider == "anthropic"),
        "{r34:?}"
    );
}

#[test]
fn a_failover_jump_picks_its_request_and_pauses_there() {
    let mut app = console(DEMO, Speed::One, true);
    type_keys(&mut app, &[']']);
    insta::assert_snapshot!("a_failover_jump", text(&screen(&app, 160, 48)));
}

#[test]
fn a_breaker_jump_at_eighty_by_twenty_four() {
    let mut app = console(DEMO, Speed::One, false);
    type_keys(&mut app, &['}', '}']);
    insta::assert_snapshot!("a_breaker_jump_80x24", text(&screen(&app, 80, 24)));
}

/// The help of a replay: its own keys, the panels', none of the live-only ones (trip, prompt,
/// load, freeze) nor the prompt's; what the bar's marks mean.
#[test]
fn a_replays_help_has_its_keys_and_not_the_live_ones() {
    let mut app = console(DEMO, Speed::One, true);
    type_keys(&mut app, &['?']);
    let help = text(&screen(&app, 160, 48));
    insta::assert_snapshot!("a_replays_help", help);
    for key in ["{ }", "[ ]", "← →", "< >", "previous / next breaker change"] {
        assert!(help.contains(key), "{key}: {help}");
    }
    for live in [
        "trip the selected",
        "type a prompt",
        "freeze",
        "in the prompt",
        "load",
    ] {
        assert!(!help.contains(live), "{live}: {help}");
    }
    assert!(help.contains("↪ failover") && help.contains("◆ operator action"));
}

/// The status bar of a replay offers its keys, not the live-only ones.
#[test]
fn a_replays_status_bar_has_its_keys() {
    let app = console(DEMO, Speed::One, true);
    let shown = text(&screen(&app, 160, 48));
    let status = shown.lines().last().unwrap();
    for hint in [
        "space pause",
        ". step",
        "← → ±10 s",
        "[ ] failover",
        "{ } breaker",
        "< > speed",
    ] {
        assert!(status.contains(hint), "{hint}: {status}");
    }
    for live in ["trip", "freeze", "prompt", "load"] {
        assert!(!status.contains(live), "{live}: {status}");
    }
}

/// Each kind of mark has its glyph and, with colour, its colour; without colour the glyphs stay
/// (and no cell of the bar is coloured). The fixture: failovers from 20 s, anthropic's breaker
/// opening at 21 s, the operator tripping openai at 45 s (a breaker opened by the operator: `╳`)
/// and resetting it at 50 s (an operator action: `◆`), over 60 s.
#[test]
fn the_bar_marks_failovers_breaker_opens_and_operator_actions() {
    let path = recording("bar.jsonl", &[]);
    let path = path.to_str().unwrap();
    for color in [true, false] {
        let app = console(path, Speed::One, color);
        let buffer = screen(&app, 160, 48);
        let y = bar_row(&buffer);
        let cells: Vec<(String, Color)> = (0..buffer.area.width)
            .map(|x| (buffer[(x, y)].symbol().to_string(), buffer[(x, y)].fg))
            .collect();
        let first = |glyph: &str| cells.iter().position(|(s, _)| s == glyph);
        let marks = (first("↪"), first("█"), first("╳"), first("◆"));
        let (Some(failover), Some(open), Some(tripped), Some(operator)) = marks else {
            panic!("{cells:?}");
        };
        assert!(
            failover < open && open < tripped && tripped < operator,
            "{cells:?}"
        );
        let bar_start = cells.iter().position(|(s, _)| s == "●").unwrap();
        let bar_end = bar_start
            + cells[bar_start..]
                .iter()
                .position(|(s, _)| s == " ")
                .unwrap();
        // Positioned by time, over the recording's 59.61 s: r21's failover at 20.16 s, the
        // reset at 50 s.
        let width = (bar_end - bar_start) as f64;
        let expected = |s: f64| bar_start + (width * s / 59.61) as usize;
        assert_eq!(failover, expected(20.16), "{cells:?}");
        assert_eq!(operator, expected(50.0), "{cells:?}");
        let colours = [failover, open, tripped, operator].map(|x| cells[x].1);
        if color {
            let operators = Color::Magenta;
            assert_eq!(colours, [Color::Yellow, Color::Red, operators, operators]);
        } else {
            assert!(cells.iter().all(|(_, fg)| *fg == Color::Reset), "{cells:?}");
        }
    }
}

/// `--speed max`: the bar is full at the end without a key, and ← goes 10 s back and stays there
/// (paused) rather than running straight to the end again.
#[test]
fn at_max_speed_the_bar_fills_and_back_stays_back() {
    let mut app = console(DEMO, Speed::Max, true);
    for _ in 0..2_000 {
        let replay = app.facts().replay.unwrap();
        if replay.total == Some(replay.applied) {
            break;
        }
        app.advance_replay(Duration::from_millis(16));
        std::thread::sleep(Duration::from_millis(2));
    }
    let bar = |app: &App| {
        let buffer = screen(app, 160, 48);
        text(&buffer)
            .lines()
            .nth(usize::from(bar_row(&buffer)))
            .unwrap()
            .to_string()
    };
    let end = bar(&app);
    assert!(
        end.contains("0:01:55 / 0:01:55") && !end.contains('─'),
        "{end}"
    );
    app.on_key(&key(ratatui::crossterm::event::KeyCode::Left));
    settle(&mut app);
    for _ in 0..30 {
        app.advance_replay(Duration::from_millis(16));
    }
    let back = bar(&app);
    assert!(
        back.contains("0:01:45 / 0:01:55") && back.contains('─'),
        "{back}"
    );
    assert!(app.facts().replay.unwrap().paused);
}

/// `.` goes on to the next event that changes the screen: with r35's reply on it, each step
/// changes the panels (the clock and the bar aside), passing over the text of the replies not
/// shown on the way.
#[test]
fn each_step_changes_the_screen() {
    let mut app = console(DEMO, Speed::One, true);
    type_keys(&mut app, &[']']);
    assert_eq!(app.ui.selected_request.as_deref(), Some("r35"));
    let panels = |app: &App| {
        let buffer = screen(app, 160, 48);
        let bar = usize::from(bar_row(&buffer));
        let lines: Vec<String> = text(&buffer).lines().map(str::to_string).collect();
        // Without the header's clock, the bar, and the status bar's last result.
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 0 && *i != bar && *i + 1 != lines.len())
            .map(|(_, l)| l.clone())
            .collect::<Vec<_>>()
    };
    let mut before = panels(&app);
    let mut applied = app.facts().replay.unwrap().applied;
    let mut passed_over = 0;
    for step in 0..60 {
        type_keys(&mut app, &['.']);
        let now = panels(&app);
        assert_ne!(now, before, "step {step} changed nothing on screen");
        let replay = app.facts().replay.unwrap();
        assert!(replay.paused);
        passed_over += replay.applied - applied - 1;
        applied = replay.applied;
        before = now;
    }
    assert!(passed_over > 0, "some text was not on screen");
}
