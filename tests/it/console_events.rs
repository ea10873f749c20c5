//! The console drawn from events, as live and replay feed it: events with fixed times go through
//! `Dashboard::apply` and the frame is snapshotted, so the fold and the panels are tested together.

use chrono::{TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_textarea::TextArea;

use crate::support::events::*;
use breakerbox::console::dashboard::Dashboard;
use breakerbox::console::keys::Bindings;
use breakerbox::console::panels::{View, draw};
use breakerbox::console::ui::{LoadView, Ui};
use breakerbox::event::{Event, EventKind, Mode, Source};
use breakerbox::provider::{ErrorClass, Phase};

/// A request answered by `provider` after `first_ms`, streaming `words`.
fn answered(
    script: &mut Timeline,
    at: i64,
    id: &str,
    provider: &str,
    words: &[&str],
    attempt: u32,
) {
    let model = demo_model(provider);
    script.at(at, attempt_started(id, attempt, provider, model));
    script.at(at + 300, first_event(id, attempt, provider, 300));
    for (i, w) in words.iter().enumerate() {
        script.at(at + 320 + 20 * i as i64, text_delta(id, provider, w));
    }
    let end = at + 400 + 20 * words.len() as i64;
    let tokens = [20, words.len() as u64, 0, 0];
    script.at(end, usage(id, provider, model, tokens, 0.0004));
}

fn finished(
    script: &mut Timeline,
    at: i64,
    id: &str,
    provider: &str,
    attempts: u32,
    cost: f64,
    primary: f64,
) {
    let end = Finished {
        provider: Some(provider),
        stop_reason: Some("end_turn"),
        total_ms: 1500,
        cost_usd: cost,
        attempts,
        primary_cost_usd: Some(primary),
        ..Finished::default()
    };
    script.at(at, request_finished(id, end));
}

fn incident() -> Vec<Event> {
    let mut sc = Timeline::new(Utc.with_ymd_and_hms(2026, 3, 14, 12, 0, 0).unwrap());
    sc.at(0, session_started(Mode::Demo, demo_providers(), Some(2)));
    let chain = ["anthropic", "openai"];
    // r1: healthy.
    let prompt = Some("Summarise the deploy log.");
    sc.at(1_000, request_started("r1", Source::Load, &chain, prompt));
    answered(
        &mut sc,
        1_000,
        "r1",
        "anthropic",
        &["The ", "deploy ", "went ", "fine."],
        1,
    );
    finished(&mut sc, 1_600, "r1", "anthropic", 1, 0.0004, 0.0004);
    // r2: rate-limited twice, the breaker opens, openai answers.
    let prompt = Some("Which test is flaky?");
    sc.at(5_000, request_started("r2", Source::Load, &chain, prompt));
    for (n, t) in [(1, 5_000), (2, 5_600)] {
        sc.at(
            t,
            attempt_started("r2", n, "anthropic", "claude-sonnet-4-5"),
        );
        sc.at(
            t + 40,
            EventKind::AttemptFailed {
                request_id: "r2".into(),
                attempt: n,
                provider: "anthropic".into(),
                phase: Phase::Headers,
                class: ErrorClass::RateLimited,
                retryable: true,
                status: Some(429),
                retry_after_ms: Some(5_000),
                message: "Number of requests has exceeded your rate limit".into(),
                elapsed_ms: 40,
            },
        );
    }
    let reason = "2 consecutive failures";
    sc.at(
        5_641,
        breaker_changed("anthropic", "closed", "open", reason, Some(30_000)),
    );
    answered(
        &mut sc,
        5_650,
        "r2",
        "openai",
        &["Probably ", "the ", "retry ", "test."],
        3,
    );
    finished(&mut sc, 6_200, "r2", "openai", 3, 0.0004, 0.0012);
    // r3, the operator's prompt: openai breaks mid-reply, the text is withdrawn, openai answers again.
    let prompt = Some("Why half-open?");
    sc.at(9_000, request_started("r3", Source::Prompt, &chain, prompt));
    sc.at(9_000, attempt_skipped("r3", "anthropic", "breaker_open"));
    sc.at(9_000, attempt_started("r3", 1, "openai", "gpt-5"));
    sc.at(9_300, first_event("r3", 1, "openai", 300));
    sc.at(9_320, text_delta("r3", "openai", "Because a brea"));
    sc.at(
        9_400,
        EventKind::AttemptFailed {
            request_id: "r3".into(),
            attempt: 1,
            provider: "openai".into(),
            phase: Phase::MidStream,
            class: ErrorClass::StreamCut,
            retryable: true,
            status: None,
            retry_after_ms: None,
            message: "stream broke".into(),
            elapsed_ms: 400,
        },
    );
    sc.at(9_420, rewind("r3", "openai", 14, "stream_cut"));
    answered(
        &mut sc,
        9_430,
        "r3",
        "openai",
        &["Half-open ", "lets ", "a ", "probe ", "test ", "recovery."],
        2,
    );
    finished(&mut sc, 10_100, "r3", "openai", 2, 0.0006, 0.0018);
    let detail = "latency:first=2s,token=80ms";
    sc.at(12_000, operator_action("set_fault", Some("openai"), detail));
    sc.events()
}

fn frame(dash: &Dashboard, ui: &Ui, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    let keys = Bindings::default();
    let prompt = TextArea::default();
    terminal
        .draw(|f| {
            draw(
                f,
                &View {
                    dash,
                    ui,
                    keys: &keys,
                    prompt: &prompt,
                },
            )
        })
        .unwrap();
    terminal.backend().to_string()
}

#[test]
fn an_incident_from_events() {
    let mut dash = Dashboard::new();
    for event in incident() {
        dash.apply(&event);
    }
    let ui = Ui {
        faults_available: true,
        load: Some(LoadView {
            on: true,
            per_sec: 1.0,
        }),
        ..Ui::default()
    };
    let screen = frame(&dash, &ui, 120, 40);
    // The facts the frame must show, whatever the layout's details.
    for needle in [
        "DEMO",
        "OPEN",
        "half-open in 23s",
        "2/2",
        "rate_limited",
        "⟲ withdrawn 14 chars from openai",
        "Half-open lets a probe test recovery.",
        "r3",
    ] {
        assert!(screen.contains(needle), "{needle:?} missing:\n{screen}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn the_same_events_give_the_same_frame() {
    let events = incident();
    let frames: Vec<String> = (0..2)
        .map(|_| {
            let mut dash = Dashboard::new();
            for e in &events {
                dash.apply(e);
            }
            frame(&dash, &Ui::default(), 160, 48)
        })
        .collect();
    assert_eq!(frames[0], frames[1]);
}
