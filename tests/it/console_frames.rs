//! Rendered frames of the operator console, as insta snapshots of the `TestBackend` buffer.
//!
//! The dashboards here are built by setting `Dashboard`'s fields directly, at fixed instants, so the
//! frames are exact: the panels read time only from `Dashboard::now`, so nothing needs filtering.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui_textarea::TextArea;

use breakerbox::console::dashboard::{
    AttemptState, AttemptView, BreakerSpan, Dashboard, ErrorCount, LastError, LatencyPoint,
    LogLine, ModelBreaker, PoolView, ProviderView, RequestView, RewindView, Tokens, Totals,
};
use breakerbox::console::keys::Bindings;
use breakerbox::console::panels::{Facts, View, draw};
use breakerbox::console::ui::{Focus, LoadView, LogFilter, Overlay, Ui};
use breakerbox::engine::breaker::BreakerState;
use breakerbox::event::{Mode, Outcome, PoolStrategy, Source};
use breakerbox::provider::{ErrorClass, Phase};
use breakerbox::session::Command;

/// Seconds from the session's start to the frame's `now` (12:12:31).
const NOW: i64 = 751;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 12, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

/// A small deterministic jitter in 0..spread, so the latency bars look like traffic.
fn jitter(seed: i64, spread: u64) -> u64 {
    let x = (seed as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (x >> 33) % spread.max(1)
}

/// A provider with an attempt every `every` seconds over the session; `latency(t)` is `None` for a
/// failed attempt and the caller says when there were no attempts at all (`skip`).
fn traffic(
    p: &mut ProviderView,
    every: i64,
    latency: impl Fn(i64) -> Option<u64>,
    skip: impl Fn(i64) -> bool,
) {
    let mut t = 3;
    while t <= NOW {
        if !skip(t) {
            let point = latency(t);
            p.latency_series.push_back(LatencyPoint {
                at: at(t),
                latency_ms: point,
            });
            p.attempts += 1;
            match point {
                Some(ms) => {
                    p.successes += 1;
                    p.latency.record(ms).unwrap();
                }
                None => p.failures += 1,
            }
            if t > NOW - 10 {
                p.recent_attempts.push_back(at(t));
            }
        }
        t += every;
    }
}

fn timeline(spans: &[(i64, BreakerState)]) -> VecDeque<BreakerSpan> {
    spans
        .iter()
        .map(|(t, state)| BreakerSpan {
            from: at(*t),
            state: *state,
        })
        .collect()
}

fn anthropic() -> ProviderView {
    let mut p = ProviderView::new("anthropic", "anthropic", "claude-sonnet-4-5");
    // Rate-limited six minutes ago (one failed probe, then recovered), rate-limited again now.
    let limited = |t: i64| (NOW - 365..NOW - 270).contains(&t) || t > NOW - 60;
    traffic(
        &mut p,
        2,
        |t| (!limited(t)).then(|| 280 + jitter(t, 160) + if t % 97 == 0 { 900 } else { 0 }),
        |t| (NOW - 360..NOW - 270).contains(&t) && t % 10 != 1 || t > NOW - 18,
    );
    p.breaker = BreakerState::Open;
    p.breaker_since = Some(at(NOW - 18));
    p.open_until = Some(at(NOW + 12));
    p.breaker_reason = "5 consecutive failures".into();
    p.consecutive_failures = 5;
    p.threshold = Some(5);
    p.last_error = Some(LastError {
        class: ErrorClass::RateLimited,
        phase: Phase::Headers,
        retryable: true,
        message: "429 rate_limit_error: request rate limit exceeded, retry after 5s".into(),
        at: at(NOW - 18),
    });
    p.timeline = timeline(&[
        (0, BreakerState::Closed),
        (NOW - 360, BreakerState::Open),
        (NOW - 330, BreakerState::HalfOpen),
        (NOW - 329, BreakerState::Open),
        (NOW - 270, BreakerState::HalfOpen),
        (NOW - 269, BreakerState::Closed),
        (NOW - 18, BreakerState::Open),
    ]);
    p.tokens = Tokens {
        input: 412_880,
        output: 96_310,
        cache_read: 180_200,
        cache_write: 22_400,
    };
    p.cost_usd = 2.7931;
    p.failed_cost_usd = 0.0412;
    p.fault = Some("rate_limit:retry_after=5s".into());
    p
}

fn openai() -> ProviderView {
    let mut p = ProviderView::new("openai", "openai", "gpt-5");
    // The fallback: a trickle until anthropic trips, then all the traffic, slower under load.
    let busy = |t: i64| (NOW - 360..NOW - 270).contains(&t) || t > NOW - 60;
    traffic(
        &mut p,
        2,
        |t| {
            let base = if busy(t) { 900 } else { 520 };
            (t != NOW - 300).then(|| base + jitter(t + 7, 700))
        },
        |t| !busy(t) && t % 20 != 3,
    );
    p.breaker_since = Some(at(0));
    p.threshold = Some(5);
    p.last_error = Some(LastError {
        class: ErrorClass::Overloaded,
        phase: Phase::Headers,
        retryable: true,
        message: "503 server is overloaded, try again later".into(),
        at: at(NOW - 300),
    });
    p.timeline = timeline(&[(0, BreakerState::Closed)]);
    p.tokens = Tokens {
        input: 120_400,
        output: 51_020,
        cache_read: 0,
        cache_write: 0,
    };
    p.cost_usd = 0.9214;
    p.failed_cost_usd = 0.0055;
    p
}

/// A provider whose key is wrong: flagged, every attempt a non-retryable auth failure.
fn openai_eu() -> ProviderView {
    let mut p = ProviderView::new("openai-eu", "openai", "gpt-5-mini");
    traffic(&mut p, 30, |_| None, |t| t > 200);
    p.threshold = Some(5);
    p.breaker_since = Some(at(0));
    p.last_error = Some(LastError {
        class: ErrorClass::Auth,
        phase: Phase::Headers,
        retryable: false,
        message: "401 invalid_api_key: Incorrect API key provided".into(),
        at: at(183),
    });
    p.flagged = Some("misconfigured: auth: Incorrect API key provided".into());
    p.timeline = timeline(&[(0, BreakerState::Closed)]);
    p
}

fn attempt(number: u32, provider: &str, state: AttemptState) -> AttemptView {
    AttemptView {
        number,
        provider: provider.into(),
        model: String::new(),
        state,
        detail: Default::default(),
    }
}

fn failed(class: ErrorClass, phase: Phase, retryable: bool) -> AttemptState {
    AttemptState::Failed {
        class,
        phase,
        retryable,
        message: String::new(),
    }
}

const REPLY: &str = "A circuit breaker that only knew open and closed would have to guess when a \
provider has recovered. Closing too early sends the full load back to a provider that is still \
struggling and trips the breaker again at once; waiting too long leaves a healthy provider idle \
while the fallback pays more for every request.\n\nThe half-open state turns the guess into a \
measurement: after the recovery period a limited number of probe requests go through. If they \
succeed the breaker closes and traffic returns; if one fails it opens again, with a longer \
recovery, so a provider that keeps failing is asked less and less often.";

fn request(n: u32, started: i64) -> RequestView {
    RequestView {
        id: format!("r{n}"),
        source: Source::Load,
        prompt: None,
        chain: vec!["anthropic".into(), "openai".into()],
        started_at: at(started),
        text: "ok".into(),
        text_truncated: false,
        rewinds: Vec::new(),
        attempts: vec![attempt(
            1,
            "anthropic",
            AttemptState::Streaming { latency_ms: 310 },
        )],
        provider: Some("anthropic".into()),
        outcome: Some(Outcome::Ok),
        class: None,
        message: None,
        stop_reason: Some("end_turn".into()),
        total_ms: Some(1_840),
        cost_usd: 0.0061,
        unpriced: false,
    }
}

fn requests() -> VecDeque<RequestView> {
    let mut out = VecDeque::new();
    for n in 469..=482 {
        let started = NOW - i64::from(482 - n) * 8 - 2;
        let mut r = request(n, started);
        if started > NOW - 60 {
            // Anthropic rate-limited: the request fails over to openai.
            r.attempts = vec![
                attempt(
                    1,
                    "anthropic",
                    failed(ErrorClass::RateLimited, Phase::Headers, true),
                ),
                attempt(2, "openai", AttemptState::Streaming { latency_ms: 1_120 }),
            ];
            r.provider = Some("openai".into());
            r.total_ms = Some(3_410);
            r.cost_usd = 0.0094;
        }
        if started > NOW - 18 {
            r.attempts[0] = attempt(
                1,
                "anthropic",
                AttemptState::Skipped {
                    reason: breakerbox::event::SkipReason::BreakerOpen,
                },
            );
        }
        out.push_back(r);
    }
    if let Some(r) = out.iter_mut().find(|r| r.id == "r476") {
        r.outcome = Some(Outcome::Error);
        r.provider = None;
        r.class = Some(ErrorClass::Overloaded);
        r.message = Some("every provider failed: openai overloaded".into());
        r.attempts[1] = attempt(
            2,
            "openai",
            failed(ErrorClass::Overloaded, Phase::Headers, true),
        );
        r.stop_reason = None;
        r.text = String::new();
    }
    if let Some(r) = out.back_mut() {
        // The newest: anthropic cut the stream mid-way; openai is answering now.
        r.source = Source::Prompt;
        r.prompt = Some("Why does a circuit breaker need a half-open state?".into());
        r.attempts = vec![
            attempt(
                1,
                "anthropic",
                failed(ErrorClass::StreamCut, Phase::MidStream, true),
            ),
            attempt(2, "openai", AttemptState::Streaming { latency_ms: 412 }),
        ];
        r.rewinds = vec![RewindView {
            provider: "anthropic".into(),
            discarded_chars: 120,
            reason: "stream_cut".into(),
        }];
        r.text = REPLY.into();
        r.provider = Some("openai".into());
        r.outcome = None;
        r.stop_reason = None;
        r.total_ms = None;
        r.cost_usd = 0.0;
    }
    out
}

fn log() -> VecDeque<LogLine> {
    let line = |t: i64, seq: u64, kind: &'static str, provider: Option<&str>, text: &str| LogLine {
        at: at(t),
        seq,
        kind,
        provider: provider.map(str::to_string),
        text: text.into(),
        fields: Vec::new(),
    };
    let mut out = VecDeque::new();
    out.push_back(line(0, 1, "session_started", None, "session started in demo mode: anthropic (claude-sonnet-4-5), openai (gpt-5), openai-eu (gpt-5-mini); breakers open after 5 failures in a row"));
    out.push_back(line(
        183,
        2,
        "provider_flagged",
        Some("openai-eu"),
        "openai-eu flagged: misconfigured: auth: Incorrect API key provided",
    ));
    out.push_back(line(
        NOW - 62,
        3,
        "operator_action",
        Some("anthropic"),
        "operator set_fault anthropic: rate_limit:retry_after=5s",
    ));
    let mut seq = 4;
    for (i, t) in (NOW - 58..NOW - 18).step_by(8).enumerate() {
        let id = 475 + i;
        out.push_back(line(
            t,
            seq,
            "request_started",
            None,
            &format!("r{id} started (load): anthropic → openai"),
        ));
        out.push_back(line(t, seq + 1, "attempt_failed", Some("anthropic"), &format!("r{id} #1 anthropic rate_limited in headers (HTTP 429, retry after 5.0 s, retryable): request rate limit exceeded")));
        out.push_back(line(
            t + 1,
            seq + 2,
            "first_event",
            Some("openai"),
            &format!("r{id} #2 openai first event in {} ms", 900 + jitter(t, 700)),
        ));
        out.push_back(line(
            t + 3,
            seq + 3,
            "request_finished",
            Some("openai"),
            &format!("r{id} answered by openai in 3.41 s, $0.009400 (2 attempts)"),
        ));
        seq += 4;
    }
    out.push_back(line(
        NOW - 18,
        seq,
        "breaker_changed",
        Some("anthropic"),
        "anthropic breaker closed → open (5 consecutive failures); half-open in 30.0 s",
    ));
    out.push_back(line(
        NOW - 10,
        seq + 1,
        "request_started",
        None,
        "r481 started (load): anthropic → openai",
    ));
    out.push_back(line(
        NOW - 10,
        seq + 2,
        "attempt_skipped",
        Some("anthropic"),
        "r481 anthropic skipped: breaker_open",
    ));
    out.push_back(line(
        NOW - 9,
        seq + 3,
        "first_event",
        Some("openai"),
        "r481 #2 openai first event in 1120 ms",
    ));
    out.push_back(line(
        NOW - 6,
        seq + 4,
        "request_finished",
        Some("openai"),
        "r481 answered by openai in 3.41 s, $0.009400 (2 attempts)",
    ));
    out.push_back(line(
        NOW - 4,
        seq + 5,
        "request_started",
        None,
        "r482 started (prompt): anthropic → openai",
    ));
    out.push_back(line(
        NOW - 4,
        seq + 6,
        "first_event",
        Some("anthropic"),
        "r482 #1 anthropic first event in 298 ms",
    ));
    out.push_back(line(
        NOW - 3,
        seq + 7,
        "attempt_failed",
        Some("anthropic"),
        "r482 #1 anthropic stream_cut in mid_stream (retryable): stream closed before message_stop",
    ));
    out.push_back(line(
        NOW - 3,
        seq + 8,
        "rewind",
        Some("anthropic"),
        "r482 rewind: 120 chars withdrawn after anthropic (stream_cut)",
    ));
    out.push_back(line(
        NOW - 2,
        seq + 9,
        "first_event",
        Some("openai"),
        "r482 #2 openai first event in 412 ms",
    ));
    out
}

fn errors() -> std::collections::BTreeMap<(String, ErrorClass), ErrorCount> {
    let count = |count: u64, retryable: bool, message: &str, t: i64| ErrorCount {
        count,
        retryable,
        last_message: message.into(),
        last_at: at(t),
    };
    [
        (
            ("anthropic", ErrorClass::RateLimited),
            count(
                26,
                true,
                "429 request rate limit exceeded, retry after 5s",
                NOW - 18,
            ),
        ),
        (
            ("anthropic", ErrorClass::StreamCut),
            count(2, true, "stream closed before message_stop", NOW - 3),
        ),
        (
            ("openai", ErrorClass::Overloaded),
            count(
                1,
                true,
                "503 server is overloaded, try again later",
                NOW - 300,
            ),
        ),
        (
            ("openai-eu", ErrorClass::Auth),
            count(7, false, "401 Incorrect API key provided", 183),
        ),
    ]
    .into_iter()
    .map(|((p, c), n)| ((p.to_string(), c), n))
    .collect()
}

/// Twelve minutes into a demo session: anthropic rate-limited and open, openai answering.
fn incident() -> Dashboard {
    let mut dash = Dashboard::new();
    dash.mode = Some(Mode::Demo);
    dash.started_at = Some(at(0));
    dash.now = Some(at(NOW));
    dash.recording = Some("incident-2026-03-14.jsonl".into());
    dash.providers = vec![anthropic(), openai(), openai_eu()];
    dash.totals = Totals {
        requests: 482,
        answered: 470,
        failed_over: 31,
        failed: 4,
        cancelled: 0,
        in_flight: 2,
        cost_usd: 3.7145,
        failed_cost_usd: 0.0467,
        failover_delta_usd: 0.0871,
        ..Totals::default()
    };
    dash.requests = requests();
    dash.log = log();
    dash.errors = errors();
    dash.events_applied = 9_812;
    dash
}

fn demo_ui() -> Ui {
    Ui::default()
}

/// A demo's background load, on at 2 requests a second.
fn demo_facts() -> Facts {
    Facts {
        faults: true,
        load: Some(LoadView {
            on: true,
            per_sec: 2.0,
        }),
        ..Facts::default()
    }
}

fn render_with(
    dash: &Dashboard,
    ui: &Ui,
    facts: &Facts,
    prompt: &TextArea<'static>,
    (w, h): (u16, u16),
) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    let keys = Bindings::default();
    let view = View {
        dash,
        ui,
        keys: &keys,
        prompt,
        facts: facts.clone(),
    };
    terminal
        .draw(|frame| {
            draw(frame, &view);
        })
        .unwrap();
    terminal
}

/// A frame of a demo session (its background load on).
fn render(dash: &Dashboard, ui: &Ui, w: u16, h: u16) -> Terminal<TestBackend> {
    render_with(dash, ui, &demo_facts(), &TextArea::default(), (w, h))
}

fn screen(terminal: &Terminal<TestBackend>) -> String {
    terminal.backend().to_string()
}

fn assert_no_colour(terminal: &Terminal<TestBackend>) {
    for (i, cell) in terminal.backend().buffer().content().iter().enumerate() {
        assert!(
            cell.fg == Color::Reset && cell.bg == Color::Reset,
            "cell {i} ({:?}) has colour: {:?} on {:?}",
            cell.symbol(),
            cell.fg,
            cell.bg
        );
    }
}

/// The anchor of a log scrolled `n` lines up from the newest (no filter).
fn lines_up(dash: &Dashboard, n: usize) -> Option<u64> {
    dash.log.iter().rev().nth(n).map(|l| l.seq)
}

#[test]
fn main_screen_during_an_incident() {
    let terminal = render(&incident(), &demo_ui(), 160, 48);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn eighty_by_twenty_four() {
    let terminal = render(&incident(), &demo_ui(), 80, 24);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn eighty_by_twenty_four_with_the_log_focused() {
    let ui = Ui {
        focus: Focus::Log,
        log_at: lines_up(&incident(), 5),
        ..demo_ui()
    };
    let terminal = render(&incident(), &ui, 80, 24);
    insta::assert_snapshot!(screen(&terminal));
}

/// The smallest full layout, an older (failed) request picked, the log scrolled up.
#[test]
fn full_layout_at_its_smallest_with_a_picked_request() {
    let ui = Ui {
        focus: Focus::Requests,
        selected_request: Some("r476".into()),
        log_at: lines_up(&incident(), 3),
        ..demo_ui()
    };
    let terminal = render(&incident(), &ui, 120, 40);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn help_overlay() {
    let ui = Ui {
        overlay: Some(Overlay::Help { scroll: 0 }),
        ..demo_ui()
    };
    let terminal = render(&incident(), &ui, 160, 48);
    insta::assert_snapshot!(screen(&terminal));
}

/// The operator tripped anthropic and held openai closed a minute ago.
fn forced() -> Dashboard {
    let mut dash = incident();
    let trip = NOW - 60;
    let a = &mut dash.providers[0];
    a.breaker = BreakerState::ForcedOpen;
    a.breaker_since = Some(at(trip));
    a.open_until = None;
    a.breaker_reason = "operator: trip".into();
    a.timeline.retain(|s| s.from < at(trip));
    a.timeline.push_back(BreakerSpan {
        from: at(trip),
        state: BreakerState::ForcedOpen,
    });
    let o = &mut dash.providers[1];
    o.breaker = BreakerState::ForcedClosed;
    o.breaker_since = Some(at(trip + 5));
    o.breaker_reason = "operator: force closed".into();
    o.timeline.push_back(BreakerSpan {
        from: at(trip + 5),
        state: BreakerState::ForcedClosed,
    });
    dash
}

#[test]
fn forced_states() {
    let ui = Ui {
        flash: Some("openai forced closed".into()),
        ..demo_ui()
    };
    let terminal = render(&forced(), &ui, 160, 48);
    let text = screen(&terminal);
    assert!(text.contains("FORCED OPEN") && text.contains("FORCED CLOSED"));
    insta::assert_snapshot!(text);
}

#[test]
fn confirm_popup() {
    let ui = Ui {
        overlay: Some(Overlay::Confirm {
            command: Command::Trip {
                provider: "anthropic".into(),
            },
        }),
        ..demo_ui()
    };
    let terminal = render(&incident(), &ui, 80, 24);
    let text = screen(&terminal);
    assert!(text.contains("Trip anthropic?"));
    assert!(text.contains("y to confirm, any other key cancels"));
    insta::assert_snapshot!(text);
}

#[test]
fn fault_picker() {
    let ui = Ui {
        overlay: Some(Overlay::FaultPicker {
            provider: "anthropic".into(),
            selected: 2,
        }),
        ..demo_ui()
    };
    let terminal = render(&incident(), &ui, 80, 24);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn log_filter_popup_and_a_filtered_log() {
    let ui = Ui {
        overlay: Some(Overlay::LogFilter { selected: 3 }),
        log_filter: LogFilter {
            provider: Some("anthropic".into()),
            ..LogFilter::default()
        },
        ..demo_ui()
    };
    let terminal = render(&incident(), &ui, 160, 48);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn prompt_focused_with_text() {
    let ui = Ui {
        focus: Focus::Prompt,
        ..demo_ui()
    };
    let prompt = TextArea::from(["Summarise the incident so far", "in three bullet points."]);
    let terminal = render_with(&incident(), &ui, &demo_facts(), &prompt, (100, 30));
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn no_colour_frozen_with_events_missed() {
    let ui = Ui {
        color: false,
        ..demo_ui()
    };
    let frozen = Facts {
        frozen: true,
        ..demo_facts()
    };
    let mut dash = forced();
    dash.events_missed = 12;
    let terminal = render_with(&dash, &ui, &frozen, &TextArea::default(), (160, 48));
    assert_no_colour(&terminal);
    insta::assert_snapshot!(screen(&terminal));
}

#[test]
fn no_colour_anywhere() {
    let overlays = [
        None,
        Some(Overlay::Help { scroll: 0 }),
        Some(Overlay::Confirm {
            command: Command::Reset {
                provider: "anthropic".into(),
            },
        }),
        Some(Overlay::FaultPicker {
            provider: "openai".into(),
            selected: 0,
        }),
        Some(Overlay::LogFilter { selected: 0 }),
    ];
    for overlay in overlays {
        for (w, h) in [(160, 48), (80, 24), (120, 40), (30, 10)] {
            let ui = Ui {
                color: false,
                overlay: overlay.clone(),
                ..demo_ui()
            };
            assert_no_colour(&render(&incident(), &ui, w, h));
        }
    }
}

#[test]
fn too_small() {
    let terminal = render(&incident(), &demo_ui(), 50, 12);
    let text = screen(&terminal);
    assert!(text.contains("terminal too small: 50×12"));
    assert!(text.contains("need at least 60×16"));
    insta::assert_snapshot!(text);
}

#[test]
fn an_empty_dashboard_waits_for_the_session() {
    let nothing = Facts::default();
    let terminal = render_with(
        &Dashboard::new(),
        &Ui::default(),
        &nothing,
        &TextArea::default(),
        (100, 30),
    );
    insta::assert_snapshot!(screen(&terminal));
}

/// A gateway's console before any agent has called: the base URLs agents need are on screen (the
/// banner printed before the console took the screen is hidden behind it).
#[test]
fn a_gateway_with_no_requests_yet_says_where_agents_point() {
    use crate::support::events::{Timeline, demo_providers, session_started};
    let mut timeline = Timeline::new(chrono::Utc::now());
    timeline.at(0, session_started(Mode::Serve, demo_providers(), Some(5)));
    let mut dash = Dashboard::new();
    for event in timeline.events() {
        dash.apply(&event);
    }
    let ui = Ui {
        serving: Some("127.0.0.1:8080".into()),
        ..demo_ui()
    };
    let text = screen(&render(&dash, &ui, 120, 35));
    assert!(
        text.contains("OPENAI_BASE_URL=http://127.0.0.1:8080/v1"),
        "{text}"
    );
    assert!(
        text.contains("ANTHROPIC_BASE_URL=http://127.0.0.1:8080"),
        "{text}"
    );
    // Not a gateway: no URLs.
    let local = screen(&render(&dash, &demo_ui(), 120, 35));
    assert!(!local.contains("BASE_URL"), "{local}");
}

/// Every width and every height from nothing to 200, on an empty and a busy dashboard, and with
/// each popup open: drawing never panics. (Fewer sizes with popups: each frame costs milliseconds
/// in a debug build, most of it ratatui's layout solver meeting a new size.)
#[test]
fn any_size_draws_without_panicking() {
    let ui = Ui {
        selected_provider: 7,
        selected_request: Some("gone".into()),
        reply_scroll: u16::MAX,
        log_at: Some(0),
        ..demo_ui()
    };
    let mut frames = Frames::new();
    let busy = incident();
    // Every small size (where edge cases live), a sample of the rest, and each layout breakpoint
    // ±1: all 201 sizes would cost ~25 s of layout solving for little more coverage.
    let sizes: Vec<u16> = (0..=40)
        .chain((41..=200).step_by(9))
        .chain([
            59, 60, 61, 79, 80, 81, 109, 110, 111, 119, 120, 121, 159, 160, 161,
        ])
        .collect();
    for &n in &sizes {
        for dash in [&Dashboard::new(), &busy] {
            for (w, h) in [(n, n), (n, 24), (80, n)] {
                frames.draw(dash, &ui, w, h);
            }
        }
    }
    let forced = forced();
    let overlays = [
        Overlay::Help { scroll: 0 },
        Overlay::Confirm {
            command: Command::ForceClosed {
                provider: "openai".into(),
            },
        },
        Overlay::FaultPicker {
            provider: "anthropic".into(),
            selected: 99,
        },
        Overlay::LogFilter { selected: 99 },
    ];
    for overlay in overlays {
        let ui = Ui {
            overlay: Some(overlay),
            ..ui.clone()
        };
        for &n in &sizes {
            frames.draw(&forced, &ui, n, n);
        }
    }
}

/// One terminal resized for each frame.
struct Frames {
    terminal: Terminal<TestBackend>,
    keys: Bindings,
    prompt: TextArea<'static>,
}

impl Frames {
    fn new() -> Self {
        Frames {
            terminal: Terminal::new(TestBackend::new(0, 0)).unwrap(),
            keys: Bindings::default(),
            prompt: TextArea::from(["a prompt"]),
        }
    }

    fn draw(&mut self, dash: &Dashboard, ui: &Ui, w: u16, h: u16) {
        let view = View {
            dash,
            ui,
            keys: &self.keys,
            prompt: &self.prompt,
            facts: demo_facts(),
        };
        self.terminal.backend_mut().resize(w, h);
        self.terminal
            .resize(ratatui::layout::Rect::new(0, 0, w, h))
            .unwrap();
        self.terminal
            .draw(|frame| {
                draw(frame, &view);
            })
            .unwrap();
    }
}

#[test]
fn help_on_a_short_terminal_says_it_scrolls() {
    let ui = Ui {
        overlay: Some(Overlay::Help { scroll: 3 }),
        ..demo_ui()
    };
    let text = screen(&render(&incident(), &ui, 80, 24));
    assert!(text.contains(" 3 above · "), "{text}");
    assert!(text.contains(" below · ↑↓ PgUp PgDn "), "{text}");
    insta::assert_snapshot!(text);
}

/// Anthropic with a breaker per model (`breaker = "model"`): sonnet rate-limited and open, haiku
/// probing, opus closed. One row shows the worst; a row per model under it shows each.
fn per_model() -> Dashboard {
    let mut dash = incident();
    let model = |name: &str, state, since, reason: &str| ModelBreaker {
        model: name.into(),
        state,
        since: at(since),
        reason: reason.into(),
        open_until: None,
        probes_in_flight: 0,
        consecutive_failures: 0,
    };
    let a = &mut dash.providers[0];
    a.models = vec![
        ModelBreaker {
            open_until: Some(at(NOW + 12)),
            consecutive_failures: 5,
            ..model(
                "claude-sonnet-4-5",
                BreakerState::Open,
                NOW - 18,
                "5 consecutive failures",
            )
        },
        ModelBreaker {
            probes_in_flight: 1,
            ..model(
                "claude-haiku-4-5",
                BreakerState::HalfOpen,
                NOW - 2,
                "recovery elapsed",
            )
        },
        model("claude-opus-4-1", BreakerState::Closed, 0, ""),
    ];
    dash
}

#[test]
fn per_model_breakers_under_their_provider() {
    let terminal = render(&per_model(), &demo_ui(), 160, 48);
    let text = screen(&terminal);
    for needle in [
        "└ claude-sonnet-4-5",
        "└ claude-haiku-4-5",
        "└ claude-opus-4-1",
        "1 probe in flight",
        "recovery elapsed",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(text);
    // At 80×24 the model rows keep their names and states.
    let small = screen(&render(&per_model(), &demo_ui(), 80, 24));
    assert!(
        small.contains("└ claude-haiku-4") && small.contains("HALF-OPEN"),
        "{small}"
    );
    // The selection is a provider's row, below the model rows above it.
    let ui = Ui {
        selected_provider: 1,
        ..demo_ui()
    };
    let picked = screen(&render(&per_model(), &ui, 80, 24));
    assert!(picked.contains("▶ openai "), "{picked}");
}

/// Anthropic as a pool of two deployments (issue 14): the heavier one rate-limited and open, the
/// other answering; openai after the pool.
fn pooled() -> Dashboard {
    let mut dash = incident();
    let mut us = anthropic();
    us.name = "anthropic-us".into();
    us.pool = Some("claude".into());
    us.weight = 3;
    let mut eu = openai();
    eu.name = "anthropic-eu".into();
    eu.protocol = "anthropic".into();
    eu.model = "claude-sonnet-4-5".into();
    eu.pool = Some("claude".into());
    eu.last_error = None;
    dash.providers = vec![us, eu, openai()];
    dash.pools = vec![PoolView {
        name: "claude".into(),
        strategy: PoolStrategy::Weighted,
    }];
    dash
}

#[test]
fn pool_members_under_their_pool() {
    let text = screen(&render(&pooled(), &demo_ui(), 160, 48));
    for needle in [
        "claude ",
        "pool · weighted",
        "1 of 2 up",
        "├ anthropic-us ×3",
        "└ anthropic-eu",
        "$3.7145",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(text);
    // At 80×24 the pool and its members keep their names and states.
    let small = screen(&render(&pooled(), &demo_ui(), 80, 24));
    assert!(
        small.contains("├ anthropic-us") && small.contains("1 of 2 up"),
        "{small}"
    );
    // The selection is a member's own row, below its pool's; the next provider's below them.
    for (selected, row) in [
        (0, "▶ ├ anthropic-us"),
        (1, "▶ └ anthropic-eu"),
        (2, "▶ openai "),
    ] {
        let ui = Ui {
            selected_provider: selected,
            ..demo_ui()
        };
        let picked = screen(&render(&pooled(), &ui, 160, 48));
        assert!(picked.contains(row), "{row:?} missing:\n{picked}");
    }
}

// ---- Truth on screen (issue 13) ----

/// Every frame the demo can show, in colour: overlays, sizes, a disconnected attached console.
fn every_demo_frame() -> Vec<(String, Terminal<TestBackend>)> {
    let overlays = [
        None,
        Some(Overlay::Help { scroll: 0 }),
        Some(Overlay::Confirm {
            command: Command::Trip {
                provider: "anthropic".into(),
            },
        }),
        Some(Overlay::FaultPicker {
            provider: "anthropic".into(),
            selected: 3,
        }),
        Some(Overlay::LogFilter { selected: 2 }),
    ];
    let mut frames = Vec::new();
    for overlay in overlays {
        for focus in [Focus::Providers, Focus::Requests, Focus::Log, Focus::Prompt] {
            for (w, h) in [(160, 48), (120, 35), (80, 24)] {
                let ui = Ui {
                    overlay: overlay.clone(),
                    focus,
                    selected_request: Some("r476".into()),
                    ..demo_ui()
                };
                let name = format!("{overlay:?} {focus:?} {w}x{h}");
                frames.push((name, render(&incident(), &ui, w, h)));
            }
        }
    }
    let (dash, ui) = disconnected();
    frames.push(("disconnected".into(), render(&dash, &ui, 120, 35)));
    frames.push(("forced".into(), render(&forced(), &demo_ui(), 160, 48)));
    frames.push((
        "per model".into(),
        render(&per_model(), &demo_ui(), 160, 48),
    ));
    frames
}

/// Colour 8 is the background of common dark themes: nothing is drawn in it, neither text nor
/// a background (the selection was dark grey behind red).
#[test]
fn no_cell_of_a_demo_frame_is_dark_grey() {
    for (name, terminal) in every_demo_frame() {
        for (i, cell) in terminal.backend().buffer().content().iter().enumerate() {
            assert!(
                cell.fg != Color::DarkGray && cell.bg != Color::DarkGray,
                "{name}: cell {i} ({:?}) is {:?} on {:?}",
                cell.symbol(),
                cell.fg,
                cell.bg
            );
        }
    }
}

/// The selection reads on any theme: reversed and bold, beside a `▶`, in colour and without.
#[test]
fn the_selection_is_reversed_beside_a_marker() {
    use ratatui::style::Modifier;
    for color in [true, false] {
        let ui = Ui {
            color,
            focus: Focus::Requests,
            selected_request: Some("r476".into()),
            ..demo_ui()
        };
        let terminal = render(&incident(), &ui, 160, 48);
        let buffer = terminal.backend().buffer();
        let text = screen(&terminal);
        let row = text
            .lines()
            .position(|l| l.contains("▶ r476"))
            .unwrap_or_else(|| panic!("no marked row:\n{text}"));
        let line = text.lines().nth(row).unwrap();
        let col = line.chars().position(|c| c == '▶').unwrap();
        let cell = &buffer[(col as u16 + 3, row as u16)];
        assert!(
            cell.modifier.contains(Modifier::REVERSED | Modifier::BOLD),
            "colour {color}: {cell:?}"
        );
        assert_ne!(cell.bg, Color::DarkGray);
    }
}

/// A scenario runs anthropic at `rate_limit:retry_after=5s,p=0.8`: the picker marks the choice
/// of that kind and writes the fault exactly as it is.
#[test]
fn the_fault_picker_shows_the_simulators_fault() {
    let mut dash = incident();
    dash.providers[0].fault = Some("rate_limit:retry_after=5s,p=0.8".into());
    let ui = Ui {
        overlay: Some(Overlay::FaultPicker {
            provider: "anthropic".into(),
            selected: 1,
        }),
        ..demo_ui()
    };
    let text = screen(&render(&dash, &ui, 80, 24));
    assert!(
        text.contains("now: rate_limit:retry_after=5s,p=0.8"),
        "{text}"
    );
    assert!(text.contains("●  rate_limit:retry_after=5s"), "{text}");
    assert!(!text.contains("●  none"), "{text}");
    insta::assert_snapshot!(text);
    // A healthy provider (the session named no fault) is at `none`.
    let ui = Ui {
        overlay: Some(Overlay::FaultPicker {
            provider: "openai".into(),
            selected: 0,
        }),
        ..demo_ui()
    };
    let text = screen(&render(&incident(), &ui, 80, 24));
    assert!(
        text.contains("now: none") && text.contains("●  none"),
        "{text}"
    );
}

/// An attached console whose gateway went away ten seconds ago, the screen as of then.
fn disconnected() -> (Dashboard, Ui) {
    use breakerbox::console::ui::{Attached, Link};
    let mut dash = incident();
    dash.mode = Some(Mode::Serve);
    dash.recording = None;
    dash.clock_held = Some(at(NOW));
    let ui = Ui {
        attached: Some(Attached {
            target: "10.0.0.7:8080".into(),
            link: Link::Disconnected { retry_in_ms: 4_000 },
        }),
        ..demo_ui()
    };
    (dash, ui)
}

/// While disconnected the clocks stop (the fold holds them: see the dashboard's tests), the
/// header says as of when, and the panels are dimmed (not dark grey); the header and status bar,
/// which say why, are not.
#[test]
fn a_disconnected_console_says_as_of_when_and_dims_its_panels() {
    use ratatui::style::Modifier;
    let (mut dash, ui) = disconnected();
    let terminal = render(&dash, &ui, 120, 35);
    let text = screen(&terminal);
    assert!(text.contains("DISCONNECTED 10.0.0.7:8080"), "{text}");
    assert!(text.contains("as of 12:12:31 UTC"), "{text}");
    assert!(text.contains("reconnecting in 4.00s"), "{text}");
    let buffer = terminal.backend().buffer();
    let dim = |x: u16, y: u16| buffer[(x, y)].modifier.contains(Modifier::DIM);
    assert!(!dim(1, 0) && !dim(1, 1), "the header is not dimmed");
    assert!(!dim(1, 34), "the status bar is not dimmed");
    assert!((2..33).all(|y| dim(1, y)), "every panel row is dimmed");
    insta::assert_snapshot!(text);
    // The held clock is what the panels count from: time passing elsewhere changes nothing.
    let later = screen(&render(&dash, &ui, 120, 35));
    dash.tick(at(NOW + 30));
    assert_eq!(screen(&render(&dash, &ui, 120, 35)), later);
    // Connected again, nothing is dimmed.
    let mut ui = ui;
    if let Some(a) = &mut ui.attached {
        a.link = breakerbox::console::ui::Link::Connected;
    }
    dash.release_clock();
    let terminal = render(&dash, &ui, 120, 35);
    let buffer = terminal.backend().buffer();
    assert!(
        buffer
            .content()
            .iter()
            .all(|c| !c.modifier.contains(Modifier::DIM))
    );
}

/// Each label says what it is: the retained list against the total, failures against the
/// breaker's threshold, what failing over spent, how old the last error is, callers that went
/// away apart from failures, a request waiting for its first event.
#[test]
fn labels_say_what_they_are() {
    let mut dash = incident();
    dash.totals.cancelled = 1;
    dash.providers[0].consecutive_failures = 6;
    let text = screen(&render(&dash, &demo_ui(), 160, 48));
    for needle in [
        " requests · newest 14 of 482 ",
        "requests 482",
        "cancelled 1",
        "failed 4",
        "6, limit 5",
        "0 of 5",
        "failing over spent $0.0871 more than the primaries would have",
        "↻ rate_limited 18s ago",
        "⊘ auth 9m28s ago",
        "↻ retryable · ⊘ not retryable",
        "✗ failed attempt",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    dash.totals.failover_delta_usd = -0.0406;
    let text = screen(&render(&dash, &demo_ui(), 160, 48));
    assert!(
        text.contains("failing over saved $0.0406 on the primaries' price"),
        "{text}"
    );
    // All kept: the count alone.
    dash.totals.requests = 14;
    assert!(screen(&render(&dash, &demo_ui(), 160, 48)).contains(" requests · 14 "));

    // A new request whose attempt has started but sent nothing yet is waiting, not streaming.
    let mut fresh = request(483, NOW - 1);
    fresh.attempts = vec![attempt(1, "openai", AttemptState::Waiting)];
    fresh.provider = Some("openai".into());
    fresh.outcome = None;
    fresh.total_ms = None;
    fresh.text = String::new();
    dash.requests.push_back(fresh);
    let text = screen(&render(&dash, &demo_ui(), 160, 48));
    let row = text.lines().find(|l| l.contains("▶ r483")).unwrap();
    assert!(
        row.contains("waiting") && !row.contains("streaming"),
        "{row}"
    );
    assert!(
        text.contains("… waiting for openai's first event"),
        "{text}"
    );
    assert!(!text.contains("streaming from openai"), "{text}");
}

/// A countdown (and the ages beside it) ticking down does not move the columns of the
/// providers table or the requests list.
#[test]
fn columns_keep_their_place_as_the_clocks_tick() {
    let columns_at = |secs: i64| {
        let mut dash = incident();
        dash.now = Some(at(NOW + secs));
        let text = screen(&render(&dash, &demo_ui(), 160, 48));
        let heading = |word: &str| {
            let line = text
                .lines()
                .find(|l| l.contains(" breaker ") && l.contains(word))
                .unwrap_or_else(|| panic!("no providers heading:\n{text}"));
            line.find(word).unwrap()
        };
        let requests = text.lines().find(|l| l.contains(" status ")).unwrap();
        (
            heading(" fails"),
            heading(" p50"),
            heading(" notes"),
            requests.find("cost").unwrap(),
            text.contains(&format!("half-open in {}", 12 - secs)),
        )
    };
    let first = columns_at(0);
    assert!(first.4, "the countdown is shown");
    for secs in [1, 2, 3, 5, 9, 11] {
        let now = columns_at(secs);
        assert!(now.4, "{secs}: the countdown is shown");
        assert_eq!(
            (now.0, now.1, now.2, now.3),
            (first.0, first.1, first.2, first.3),
            "after {secs}s"
        );
    }
}
