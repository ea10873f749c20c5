//! Moving around the console by keys, on frames drawn as a person sees them: lists move the way the
//! screen reads and say when they stopped following, a scrolled log stays put, freeze navigates
//! the snapshot, `/` searches the log, help scrolls, a panel zooms, the reply follows the prompt
//! just sent, a gateway asks before it stops, and status messages go.

use crate::support::events::{demo_providers, operator_action, request_started, session_started};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use std::time::Duration;

use breakerbox::console::app::{App, Control};
use breakerbox::console::keys::Bindings;
use breakerbox::console::ui::{Focus, Overlay, Panel, Ui};
use breakerbox::event::{Bus, EventKind, Mode, Received, Source};
use breakerbox::session::Command;

/// A control plane that only says what it was asked.
struct Said;

impl Control for Said {
    fn send(&self, command: Command) -> String {
        format!("sent {}", command.summary())
    }
}

fn key(c: char) -> KeyEvent {
    code(KeyCode::Char(c))
}

fn code(code: KeyCode) -> KeyEvent {
    KeyEvent {
        code,
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    }
}

fn ctrl_c() -> KeyEvent {
    KeyEvent {
        modifiers: KeyModifiers::CONTROL,
        ..key('c')
    }
}

struct Seat {
    app: App,
    bus: Bus,
    terminal: Terminal<TestBackend>,
}

impl Seat {
    fn new(ui: Ui, w: u16, h: u16) -> Seat {
        let mut seat = Seat {
            app: App::new(ui, Bindings::default(), Said),
            bus: Bus::new(1 << 12),
            terminal: Terminal::new(TestBackend::new(w, h)).expect("a test terminal"),
        };
        seat.event(session_started(Mode::Demo, demo_providers(), Some(5)));
        seat
    }

    fn event(&mut self, kind: EventKind) {
        let event = self.bus.publish(kind);
        self.app.on_event(Received::Event(event));
    }

    /// Requests `r{from}` to `r{to}`, from the background load.
    fn requests(&mut self, from: u32, to: u32) {
        for n in from..=to {
            self.event(request_started(
                &format!("r{n}"),
                Source::Load,
                &["anthropic", "openai"],
                None,
            ));
        }
    }

    fn keys(&mut self, keys: &[KeyEvent]) {
        for k in keys {
            self.app.on_key(k);
        }
    }

    fn screen(&mut self) -> String {
        let app = &self.app;
        self.terminal
            .draw(|f| app.draw(f))
            .expect("a frame is drawn");
        self.terminal.backend().to_string()
    }

    fn selected(&self) -> Option<&str> {
        self.app.ui.selected_request.as_deref()
    }
}

fn on(focus: Focus) -> Ui {
    Ui {
        focus,
        ..Ui::default()
    }
}

/// The requests are drawn newest first: ↓ goes to older ones (drawn below), ↑ to newer ones, and
/// up past the newest (or `g`) follows new requests again; `G` goes to the oldest.
#[test]
fn the_requests_list_moves_the_way_the_screen_reads() {
    let mut seat = Seat::new(on(Focus::Requests), 120, 40);
    seat.requests(1, 30);
    seat.keys(&[key('j')]);
    assert_eq!(seat.selected(), Some("r29"));
    seat.keys(&[code(KeyCode::Down), code(KeyCode::Down)]);
    assert_eq!(seat.selected(), Some("r27"));
    seat.keys(&[key('k')]);
    assert_eq!(seat.selected(), Some("r28"));
    seat.keys(&[code(KeyCode::Up), code(KeyCode::Up)]);
    assert_eq!(seat.selected(), None, "up past the newest follows");
    seat.keys(&[key('G')]);
    assert_eq!(seat.selected(), Some("r1"));
    seat.keys(&[code(KeyCode::Home)]);
    assert_eq!(seat.selected(), None);
    seat.keys(&[code(KeyCode::End), code(KeyCode::Esc)]);
    assert_eq!(seat.selected(), None, "Esc follows again");
}

/// Once a request is picked, newer ones arriving push the list on but not the pick, and the list
/// says how many newer rows are hidden above and how to follow again.
#[test]
fn a_picked_request_stays_picked_and_the_list_counts_the_newer_ones() {
    let mut seat = Seat::new(on(Focus::Requests), 80, 24);
    seat.requests(1, 10);
    seat.keys(&[key('j'), key('j')]);
    assert_eq!(seat.selected(), Some("r8"));
    seat.requests(11, 40);
    assert_eq!(seat.selected(), Some("r8"));
    let screen = seat.screen();
    assert!(screen.contains("▶ r8 "), "{screen}");
    let marker = screen
        .lines()
        .find(|l| l.contains("newer"))
        .unwrap_or_else(|| panic!("no marker: {screen}"));
    // 32 requests are newer than r8; the rows that fit above it are shown, the rest counted.
    let hidden: usize = marker
        .split("↑ ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {marker}"));
    let shown_above = screen
        .lines()
        .take_while(|l| !l.contains("▶ r8 "))
        .filter(|l| l.contains("┃  r"))
        .count();
    assert_eq!(hidden + shown_above, 32, "{marker}");
    assert!(marker.contains("Esc follows"), "{marker}");
    seat.keys(&[code(KeyCode::Esc)]);
    assert!(!seat.screen().contains("newer"));
}

/// A log scrolled up stays on the same lines as new ones arrive, counts them, and follows again
/// at the bottom (`G`) or with Esc.
#[test]
fn a_scrolled_log_stays_put_while_lines_arrive() {
    let mut seat = Seat::new(on(Focus::Log), 160, 48);
    for n in 0..60 {
        seat.event(operator_action("load", None, &format!("step {n}")));
    }
    seat.screen();
    seat.keys(&[code(KeyCode::Up), code(KeyCode::Up), code(KeyCode::Up)]);
    let anchored = seat.app.ui.log_at;
    assert!(anchored.is_some());
    let before: Vec<String> = log_lines(&seat.screen());
    for n in 60..70 {
        seat.event(operator_action("load", None, &format!("step {n}")));
    }
    let screen = seat.screen();
    assert_eq!(log_lines(&screen), before, "the scrolled log did not move");
    assert!(
        screen.contains("↓ 13 newer · G/End or Esc follows"),
        "{screen}"
    );
    seat.keys(&[key('G')]);
    assert_eq!(seat.app.ui.log_at, None);
    assert!(seat.screen().contains("step 69"));
    // Page up, then top: the oldest page, no further.
    seat.keys(&[code(KeyCode::PageUp), key('g')]);
    let top = seat.screen();
    assert!(top.contains("session started"), "{top}");
    seat.keys(&[code(KeyCode::Esc)]);
    assert_eq!(seat.app.ui.log_at, None);
}

/// The log's lines on screen, from their type on (so that the panel's border, which shows focus,
/// does not count).
fn log_lines(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.find("operator_action").map(|at| &l[at..]))
        .map(|l| l.trim_end_matches(['"', '│', '┃', ' ']).to_string())
        .collect()
}

/// Frozen, the keys move through the snapshot on screen, not through the live list behind it.
#[test]
fn freeze_navigates_the_snapshot() {
    let mut seat = Seat::new(on(Focus::Requests), 120, 40);
    seat.requests(1, 10);
    seat.keys(&[key(' ')]);
    assert!(seat.app.is_frozen());
    seat.requests(11, 20);
    seat.keys(&[key('j')]);
    assert_eq!(seat.selected(), Some("r9"), "the snapshot's second newest");
    let screen = seat.screen();
    assert!(
        screen.contains("FROZEN") && !screen.contains("r20"),
        "{screen}"
    );
    seat.keys(&[key(' ')]);
    assert!(seat.screen().contains("r20"));
}

/// `/` types a search that filters the log as it is typed; Enter keeps it (in the log's title),
/// Esc while typing drops it. The prompt is on `i`.
#[test]
fn slash_searches_the_log_and_i_is_the_prompt() {
    let mut seat = Seat::new(on(Focus::Providers), 160, 48);
    for n in 0..30 {
        seat.event(operator_action("load", None, &format!("step {n}")));
    }
    let unfiltered = log_lines(&seat.screen());
    seat.keys(&[key('/')]);
    assert_eq!(seat.app.ui.focus, Focus::Log);
    for c in "STEP 1".chars() {
        seat.app.on_key(&key(c));
    }
    let screen = seat.screen();
    assert!(screen.contains(" /STEP 1▏"), "the search line: {screen}");
    let shown = log_lines(&screen);
    // step 1 and step 10 to 19.
    assert_eq!(shown.len(), 11, "{screen}");
    assert!(shown.iter().all(|l| l.contains("step 1")));
    seat.keys(&[code(KeyCode::Enter)]);
    let screen = seat.screen();
    assert!(screen.contains("event log · /STEP 1"), "{screen}");
    assert_eq!(log_lines(&screen).len(), 11);
    // Typing `q` now is a command again, not search text.
    seat.keys(&[key('/'), code(KeyCode::Backspace), code(KeyCode::Esc)]);
    assert_eq!(seat.app.ui.log_filter.text, None);
    assert_eq!(log_lines(&seat.screen()), unfiltered);
    seat.keys(&[key('i')]);
    assert_eq!(seat.app.ui.focus, Focus::Prompt);
}

/// At 80×24 the help does not fit: it scrolls, says how much is above and below, and stops at the
/// end.
#[test]
fn help_scrolls_on_a_short_terminal() {
    let mut seat = Seat::new(on(Focus::Providers), 80, 24);
    seat.keys(&[key('?')]);
    let first = seat.screen();
    assert!(first.contains(" 0 above · "), "{first}");
    assert!(first.contains("q/Ctrl-C"), "{first}");
    seat.keys(&[code(KeyCode::PageDown), code(KeyCode::PageDown), key('G')]);
    let end = seat.screen();
    assert!(end.contains(" 0 below "), "{end}");
    assert!(end.contains("flagged"), "the last legend line: {end}");
    let Some(Overlay::Help { scroll }) = seat.app.ui.overlay else {
        panic!("help closed");
    };
    seat.keys(&[code(KeyCode::Down)]);
    assert_eq!(
        seat.app.ui.overlay,
        Some(Overlay::Help { scroll }),
        "the end is the end"
    );
    seat.keys(&[code(KeyCode::Esc)]);
    assert_eq!(seat.app.ui.overlay, None);
}

/// `z` zooms the focused panel to the whole screen; zoomed, Tab walks every panel, those a small
/// terminal leaves out included; `z` again (or Esc) puts it back.
#[test]
fn a_zoomed_panel_makes_every_panel_readable_at_80x24() {
    let mut seat = Seat::new(on(Focus::Providers), 80, 24);
    assert!(!seat.screen().contains("errors"));
    seat.keys(&[key('z')]);
    assert_eq!(seat.app.ui.zoomed, Some(Panel::Providers));
    let mut titles = Vec::new();
    for _ in 0..Panel::ORDER.len() {
        let screen = seat.screen();
        let title = screen.lines().nth(2).unwrap_or_default().to_string();
        titles.push(title);
        seat.keys(&[code(KeyCode::Tab)]);
    }
    let all = titles.join("\n");
    for name in [
        "providers",
        "latency",
        "timeline",
        "errors",
        "cost",
        "requests",
        "reply",
        "event log",
    ] {
        assert!(all.contains(name), "{name} never zoomed:\n{all}");
    }
    assert_eq!(seat.app.ui.zoomed, Some(Panel::Providers), "Tab came round");
    seat.keys(&[key('z')]);
    assert_eq!(seat.app.ui.zoomed, None);
    seat.keys(&[code(KeyCode::Tab), key('z'), code(KeyCode::Esc)]);
    assert_eq!(seat.app.ui.zoomed, None, "Esc unzooms a following list");
}

/// After Enter in the prompt the reply panel shows that prompt's request, not the background's
/// that start around it.
#[test]
fn the_reply_follows_the_prompt_just_sent() {
    let mut seat = Seat::new(on(Focus::Providers), 120, 40);
    seat.requests(1, 3);
    seat.keys(&[key('i')]);
    for c in "why is it down".chars() {
        seat.app.on_key(&key(c));
    }
    seat.keys(&[code(KeyCode::Enter)]);
    assert_eq!(seat.app.ui.focus, Focus::Reply);
    seat.requests(4, 4);
    seat.event(request_started(
        "r5",
        Source::Prompt,
        &["anthropic"],
        Some("why is it down"),
    ));
    seat.requests(6, 9);
    assert_eq!(seat.selected(), Some("r5"));
    assert!(seat.screen().contains("reply · r5"));
}

/// In `serve`, `q` and Ctrl-C ask before they stop the gateway and say what is in flight; any key
/// but `y` keeps serving; Ctrl-C twice quits.
#[test]
fn a_gateway_asks_before_it_stops() {
    let serving = Ui {
        serving: Some("127.0.0.1:8787".into()),
        ..Ui::default()
    };
    let mut seat = Seat::new(serving.clone(), 100, 30);
    seat.requests(1, 2);
    seat.keys(&[key('q')]);
    assert!(!seat.app.should_quit());
    let screen = seat.screen();
    assert!(screen.contains("Stop the gateway?"), "{screen}");
    assert!(
        screen.contains("2 requests in flight will be cut"),
        "{screen}"
    );
    seat.keys(&[key('n')]);
    assert!(!seat.app.should_quit());
    assert_eq!(seat.app.ui.overlay, None);
    seat.keys(&[key('q'), key('y')]);
    assert!(seat.app.should_quit());

    let mut seat = Seat::new(serving, 100, 30);
    seat.keys(&[ctrl_c()]);
    assert!(!seat.app.should_quit());
    seat.keys(&[ctrl_c()]);
    assert!(seat.app.should_quit(), "Ctrl-C twice always quits");

    let mut local = Seat::new(Ui::default(), 100, 30);
    local.keys(&[key('q')]);
    assert!(local.app.should_quit(), "a local console quits at once");
}

/// A status-bar message goes after a few seconds, on tokio's clock.
#[tokio::test(start_paused = true)]
async fn a_status_message_goes_after_a_while() {
    let mut seat = Seat::new(on(Focus::Providers), 100, 30);
    seat.keys(&[key('o'), key('y')]);
    let flash = seat.app.ui.flash.clone().expect("the trip said something");
    assert!(seat.screen().contains(&flash[..10]));
    assert!(!seat.app.expire_flash(tokio::time::Instant::now()));
    tokio::time::advance(Duration::from_secs(3)).await;
    assert!(!seat.app.expire_flash(tokio::time::Instant::now()));
    tokio::time::advance(Duration::from_secs(4)).await;
    assert!(seat.app.expire_flash(tokio::time::Instant::now()));
    assert_eq!(seat.app.ui.flash, None);
}
