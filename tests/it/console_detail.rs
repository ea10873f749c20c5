//! The detail view, driven by keys into the App as an operator would: Enter on a provider, a
//! request, an error class and a log line, scrolling, Esc, and `y`'s OSC 52 copy. Frames are
//! insta snapshots of a `TestBackend`; the events carry fixed times, so nothing needs filtering.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};

use crate::support::events::*;
use breakerbox::console::app::{App, Control};
use breakerbox::console::keys::Bindings;
use breakerbox::console::ui::{DetailTarget, Focus, Overlay, Ui};
use breakerbox::event::{ErrorClass, Event, EventKind, Mode, Outcome, Phase, Source};
use breakerbox::session::Command;

/// A console whose commands go nowhere: these tests only look.
struct Nowhere;

impl Control for Nowhere {
    fn send(&self, _command: Command) -> String {
        "sent".into()
    }
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + TimeDelta::milliseconds(ms)
}

const RATE_LIMITED: &str = "This request would exceed the rate limit for your organization \
    (a1b2c3) of 50 requests per minute. For details, refer to: \
    https://docs.claude.com/en/api/rate-limits. You can see the response headers for current \
    usage. Please reduce the prompt length or the maximum tokens requested, or try again later.";

fn failed(id: &str, n: u32, provider: &str, class: ErrorClass, status: u16) -> EventKind {
    EventKind::AttemptFailed {
        request_id: id.into(),
        attempt: n,
        provider: provider.into(),
        phase: Phase::Headers,
        class,
        retryable: true,
        status: Some(status),
        retry_after_ms: (status == 429).then_some(5_000),
        message: if status == 429 {
            RATE_LIMITED.into()
        } else {
            "Overloaded".into()
        },
        elapsed_ms: 184,
    }
}

/// An incident in events: anthropic rate-limits r1, which fails over to openai; its breaker
/// opens; r2 skips it and fails at openai, overloaded.
fn incident() -> Vec<Event> {
    let mut settings = BTreeMap::new();
    settings.insert("breaker.recovery".to_string(), "30s".to_string());
    settings.insert("retry.max_retries".to_string(), "2".to_string());
    let mut providers = demo_providers();
    providers[0].fault = Some("rate_limit:retry_after=5s".into());
    let kinds = vec![
        EventKind::SessionStarted {
            format_version: 1,
            mode: Mode::Demo,
            providers,
            breaker_threshold: Some(1),
            breaker_counts: None,
            settings: Some(settings),
            pools: Vec::new(),
        },
        request_started("r1", Source::Prompt, &["anthropic", "openai"], Some("Why?")),
        attempt_started("r1", 1, "anthropic", "claude-sonnet-4-5"),
        failed("r1", 1, "anthropic", ErrorClass::RateLimited, 429),
        breaker_changed(
            "anthropic",
            "closed",
            "open",
            "1 consecutive failure",
            Some(30_000),
        ),
        attempt_started("r1", 2, "openai", "gpt-5"),
        first_event("r1", 2, "openai", 320),
        text_delta(
            "r1",
            "openai",
            "Because the breaker opened.\nThen openai answered.",
        ),
        usage("r1", "openai", "gpt-5", [12, 9, 0, 0], 0.000_42),
        request_finished(
            "r1",
            Finished {
                provider: Some("openai"),
                stop_reason: Some("end_turn"),
                total_ms: 910,
                cost_usd: 0.000_42,
                attempts: 2,
                ..Finished::default()
            },
        ),
        request_started("r2", Source::Load, &["anthropic", "openai"], None),
        attempt_skipped("r2", "anthropic", "breaker_open"),
        attempt_started("r2", 1, "openai", "gpt-5"),
        failed("r2", 1, "openai", ErrorClass::Overloaded, 529),
        request_finished(
            "r2",
            Finished {
                outcome: Outcome::Error,
                class: Some(ErrorClass::Overloaded),
                message: Some("every provider failed"),
                total_ms: 400,
                attempts: 1,
                ..Finished::default()
            },
        ),
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| Event {
            ts: at(1_000 * i as i64),
            seq: i as u64 + 1,
            kind,
            gateway: None,
        })
        .collect()
}

struct Console {
    app: App,
    terminal: Terminal<TestBackend>,
}

impl Console {
    fn new(size: (u16, u16)) -> Self {
        Console::with(size, incident())
    }

    fn with((w, h): (u16, u16), events: Vec<Event>) -> Self {
        let mut app = App::new(
            Ui {
                color: false,
                ..Ui::default()
            },
            Bindings::default(),
            Nowhere,
        );
        for event in events {
            app.live.apply(&event);
        }
        let mut console = Console {
            app,
            terminal: Terminal::new(TestBackend::new(w, h)).unwrap(),
        };
        console.draw();
        console
    }

    fn draw(&mut self) -> String {
        let app = &self.app;
        self.terminal.draw(|f| app.draw(f)).unwrap();
        self.terminal.backend().to_string()
    }

    /// Press a key and draw the frame it leads to.
    fn press(&mut self, code: KeyCode) -> String {
        self.app.on_key(&KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        });
        self.draw()
    }

    fn overlay(&self) -> Option<&Overlay> {
        self.app.ui.overlay.as_ref()
    }
}

fn detail_of(console: &Console) -> Option<(DetailTarget, usize)> {
    match console.overlay() {
        Some(Overlay::Detail { target, scroll }) => Some((target.clone(), *scroll)),
        _ => None,
    }
}

/// Enter on each kind of row opens its detail, ↓ and PgDn scroll it, Esc goes back: at 120×35
/// (where Tab passes the errors panel by, as the screen has no room for it) and at 80×24.
#[test]
fn enter_opens_each_rows_detail_and_esc_goes_back() {
    for (w, h) in [(120, 35), (80, 24)] {
        let mut c = Console::new((w, h));
        let size = format!("{w}x{h}");

        let frame = c.press(KeyCode::Enter);
        assert_eq!(
            detail_of(&c),
            Some((DetailTarget::Provider("anthropic".into()), 0))
        );
        assert!(frame.contains("1 consecutive failure"), "{frame}");
        insta::assert_snapshot!(format!("detail_provider_{size}"), frame);
        // Up from the top stays at the top; ↓ and PgDn move down, never past the end.
        c.press(KeyCode::Up);
        assert_eq!(detail_of(&c).map(|(_, s)| s), Some(0));
        c.press(KeyCode::Down);
        // At 120×35 it all fits: nothing to scroll.
        let one = usize::from(h < 35);
        assert_eq!(detail_of(&c).map(|(_, s)| s), Some(one), "{size}");
        for _ in 0..50 {
            c.press(KeyCode::PageDown);
        }
        let (_, end) = detail_of(&c).unwrap();
        let frame = c.press(KeyCode::Down);
        assert_eq!(detail_of(&c).map(|(_, s)| s), Some(end), "stops at the end");
        insta::assert_snapshot!(format!("detail_provider_scrolled_{size}"), frame);
        let frame = c.press(KeyCode::Esc);
        assert_eq!(c.overlay(), None);
        assert!(!frame.contains("Breaker history"));

        c.press(KeyCode::Tab);
        assert_eq!(c.app.ui.focus, Focus::Requests, "{size}");
        let frame = c.press(KeyCode::Enter);
        assert_eq!(detail_of(&c), Some((DetailTarget::Request("r2".into()), 0)));
        insta::assert_snapshot!(format!("detail_request_{size}"), frame);
        c.press(KeyCode::Esc);

        // The older request, r1, with its failed attempt in full.
        c.press(KeyCode::Char('j'));
        c.press(KeyCode::Char('j'));
        let frame = c.press(KeyCode::Enter);
        assert_eq!(detail_of(&c), Some((DetailTarget::Request("r1".into()), 0)));
        assert!(frame.contains("HTTP 429"), "{frame}");
        insta::assert_snapshot!(format!("detail_request_failed_over_{size}"), frame);
        c.press(KeyCode::Esc);

        // Reply, then the log: Enter opens the line at its bottom (the newest).
        c.press(KeyCode::Tab);
        c.press(KeyCode::Tab);
        assert_eq!(c.app.ui.focus, Focus::Log, "{size}");
        let frame = c.press(KeyCode::Enter);
        assert_eq!(detail_of(&c), Some((DetailTarget::Log(15), 0)));
        assert!(frame.contains("every provider failed"), "{frame}");
        insta::assert_snapshot!(format!("detail_log_{size}"), frame);
        c.press(KeyCode::Esc);
        assert_eq!(c.overlay(), None);
    }
}

/// On a full-size screen the errors panel takes the focus (Tab) and Enter opens a class.
/// A request that picked its chain and turned failover off by header says so in its detail, and
/// in the event log.
#[test]
fn a_requests_detail_says_what_its_headers_asked_for() {
    let mut started = request_started("r1", Source::Gateway, &["claude-backup"], None);
    if let EventKind::RequestStarted {
        chain_name,
        failover,
        ..
    } = &mut started
    {
        *chain_name = Some("backup".into());
        *failover = Some(false);
    }
    let line = breakerbox::event::describe::describe(&started);
    assert_eq!(
        line,
        "r1 started (gateway): claude-backup (chain backup asked for) (failover off)"
    );
    let events = vec![
        EventKind::SessionStarted {
            format_version: 1,
            mode: Mode::Serve,
            providers: demo_providers(),
            breaker_threshold: None,
            breaker_counts: None,
            settings: None,
            pools: vec![],
        },
        started,
        attempt_started("r1", 1, "claude-backup", "claude-haiku-4-5"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, kind)| Event {
        ts: at(1_000 * i as i64),
        seq: i as u64 + 1,
        kind,
        gateway: None,
    })
    .collect();
    let mut c = Console::with((120, 35), events);
    c.press(KeyCode::Tab);
    let frame = c.press(KeyCode::Enter);
    assert_eq!(detail_of(&c), Some((DetailTarget::Request("r1".into()), 0)));
    assert!(
        frame.contains("chain backup (x-breakerbox-chain)"),
        "{frame}"
    );
    assert!(
        frame.contains("off (x-breakerbox-failover): its first target only"),
        "{frame}"
    );
}

#[test]
fn enter_on_an_error_class_lists_its_attempts() {
    let mut c = Console::new((160, 48));
    let frame = c.press(KeyCode::Tab);
    assert_eq!(c.app.ui.focus, Focus::Errors);
    assert!(frame.contains("▶ ↻ rate_limited"), "{frame}");
    c.press(KeyCode::Down);
    let frame = c.press(KeyCode::Enter);
    assert_eq!(
        detail_of(&c),
        Some((DetailTarget::ErrorClass(ErrorClass::Overloaded), 0))
    );
    insta::assert_snapshot!("detail_error_class_160x48", frame);
    // Small screens show the class's detail too (here opened by hand: Tab passes the panel by).
    let mut small = Console::new((80, 24));
    small.app.ui.overlay = Some(Overlay::Detail {
        target: DetailTarget::ErrorClass(ErrorClass::RateLimited),
        scroll: 0,
    });
    insta::assert_snapshot!("detail_error_class_80x24", small.draw());
}

/// Standard base64, to read back what `y` sent.
fn unbase64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for b in text.bytes().filter(|b| *b != b'=') {
        let v = ALPHABET.iter().position(|a| *a == b).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// `y` in a detail (and on a row) sends the detail's text as one OSC 52 sequence and says so.
#[test]
fn y_copies_the_detail_with_osc_52() {
    let mut c = Console::new((120, 35));
    c.press(KeyCode::Tab);
    c.press(KeyCode::Char('j'));
    c.press(KeyCode::Char('j'));
    c.press(KeyCode::Enter);
    let frame = c.press(KeyCode::Char('y'));
    assert!(
        matches!(c.overlay(), Some(Overlay::Detail { .. })),
        "y keeps the detail open"
    );
    let sequence = c.app.take_clipboard().expect("a copy");
    assert!(c.app.take_clipboard().is_none(), "written once");
    let body = sequence
        .strip_prefix("\x1b]52;c;")
        .and_then(|s| s.strip_suffix("\x1b\\"))
        .expect("an OSC 52 sequence");
    let text = String::from_utf8(unbase64(body)).unwrap();
    assert!(text.starts_with("request r1\n"), "{text}");
    // The whole message, unwrapped, and every fact of the failed attempt.
    assert!(text.contains(RATE_LIMITED), "{text}");
    for fact in [
        "HTTP 429",
        "5.00s",
        "184ms",
        "rate_limited in headers",
        "closed when it started",
    ] {
        assert!(text.contains(fact), "{fact} in {text}");
    }
    assert!(text.contains("Then openai answered."));
    let lines = text.lines().count();
    let flash = c.app.ui.flash.clone().unwrap_or_default();
    assert!(
        flash.starts_with(&format!(
            "copied request r1: {lines} lines, {} bytes",
            text.len()
        )),
        "{flash}"
    );
    assert!(frame.contains("copied request r1"), "{frame}");

    // On a row, without opening it: the provider's detail.
    c.press(KeyCode::Esc);
    c.press(KeyCode::BackTab);
    c.press(KeyCode::Char('y'));
    let sequence = c.app.take_clipboard().expect("a copy");
    let body = &sequence["\x1b]52;c;".len()..sequence.len() - 2];
    let text = String::from_utf8(unbase64(body)).unwrap();
    assert!(text.starts_with("provider anthropic\n"), "{text}");
    assert!(text.contains("rate_limit:retry_after=5s") && text.contains("breaker.recovery"));
}
