//! The console drawn from events, as live and replay feed it: events with fixed times go through
//! `Dashboard::apply` and the frame is snapshotted, so the fold and the panels are tested together.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_textarea::TextArea;

use breakerbox::console::dashboard::Dashboard;
use breakerbox::console::keys::Bindings;
use breakerbox::console::panels::{View, draw};
use breakerbox::console::ui::{LoadView, Ui};
use breakerbox::event::{Event, EventKind, Mode, Outcome, ProviderInfo, Source};
use breakerbox::provider::{ErrorClass, Phase};

/// Builds a timeline of events, one call per event, at chosen offsets in milliseconds.
struct Script {
    start: DateTime<Utc>,
    events: Vec<Event>,
}

impl Script {
    fn new() -> Self {
        Script {
            start: Utc.with_ymd_and_hms(2026, 3, 14, 12, 0, 0).unwrap(),
            events: Vec::new(),
        }
    }

    fn at(&mut self, ms: i64, kind: EventKind) {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event {
            ts: self.start + TimeDelta::milliseconds(ms),
            seq,
            kind,
        });
    }
}

fn s(text: &str) -> String {
    text.to_string()
}

/// A request answered by `provider` after `first_ms`, streaming `words`.
fn answered(script: &mut Script, at: i64, id: &str, provider: &str, words: &[&str], attempt: u32) {
    script.at(
        at,
        EventKind::AttemptStarted {
            request_id: s(id),
            attempt,
            provider: s(provider),
            model: s(model(provider)),
        },
    );
    script.at(
        at + 300,
        EventKind::FirstEvent {
            request_id: s(id),
            attempt,
            provider: s(provider),
            latency_ms: 300,
        },
    );
    for (i, w) in words.iter().enumerate() {
        script.at(
            at + 320 + 20 * i as i64,
            EventKind::TextDelta {
                request_id: s(id),
                provider: s(provider),
                text: s(w),
            },
        );
    }
    let end = at + 400 + 20 * words.len() as i64;
    script.at(
        end,
        EventKind::Usage {
            request_id: s(id),
            provider: s(provider),
            model: s(model(provider)),
            input_tokens: 20,
            output_tokens: words.len() as u64,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_usd: 0.0004,
            estimated: false,
        },
    );
}

fn model(provider: &str) -> &'static str {
    if provider == "anthropic" {
        "claude-sonnet-4-5"
    } else {
        "gpt-5"
    }
}

fn finished(
    script: &mut Script,
    at: i64,
    id: &str,
    provider: &str,
    attempts: u32,
    cost: f64,
    primary: f64,
) {
    script.at(
        at,
        EventKind::RequestFinished {
            request_id: s(id),
            outcome: Outcome::Ok,
            provider: Some(s(provider)),
            stop_reason: Some(s("end_turn")),
            class: None,
            message: None,
            total_ms: 1500,
            cost_usd: cost,
            attempts,
            failed_cost_usd: 0.0,
            primary_cost_usd: Some(primary),
        },
    );
}

fn incident() -> Vec<Event> {
    let mut sc = Script::new();
    sc.at(
        0,
        EventKind::SessionStarted {
            format_version: 1,
            mode: Mode::Demo,
            providers: vec![
                ProviderInfo {
                    name: s("anthropic"),
                    protocol: s("anthropic"),
                    model: s("claude-sonnet-4-5"),
                },
                ProviderInfo {
                    name: s("openai"),
                    protocol: s("openai"),
                    model: s("gpt-5"),
                },
            ],
            breaker_threshold: Some(2),
        },
    );
    let chain = vec![s("anthropic"), s("openai")];
    // r1: healthy.
    sc.at(
        1_000,
        EventKind::RequestStarted {
            request_id: s("r1"),
            source: Source::Load,
            chain: chain.clone(),
            prompt: Some(s("Summarise the deploy log.")),
            prompt_chars: None,
        },
    );
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
    sc.at(
        5_000,
        EventKind::RequestStarted {
            request_id: s("r2"),
            source: Source::Load,
            chain: chain.clone(),
            prompt: Some(s("Which test is flaky?")),
            prompt_chars: None,
        },
    );
    for (n, t) in [(1, 5_000), (2, 5_600)] {
        sc.at(
            t,
            EventKind::AttemptStarted {
                request_id: s("r2"),
                attempt: n,
                provider: s("anthropic"),
                model: s("claude-sonnet-4-5"),
            },
        );
        sc.at(
            t + 40,
            EventKind::AttemptFailed {
                request_id: s("r2"),
                attempt: n,
                provider: s("anthropic"),
                phase: Phase::Headers,
                class: ErrorClass::RateLimited,
                retryable: true,
                status: Some(429),
                retry_after_ms: Some(5_000),
                message: s("Number of requests has exceeded your rate limit"),
                elapsed_ms: 40,
            },
        );
    }
    sc.at(
        5_641,
        EventKind::BreakerChanged {
            provider: s("anthropic"),
            from: s("closed"),
            to: s("open"),
            reason: s("2 consecutive failures"),
            recovery_ms: Some(30_000),
        },
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
    sc.at(
        9_000,
        EventKind::RequestStarted {
            request_id: s("r3"),
            source: Source::Prompt,
            chain,
            prompt: Some(s("Why half-open?")),
            prompt_chars: None,
        },
    );
    sc.at(
        9_000,
        EventKind::AttemptSkipped {
            request_id: s("r3"),
            provider: s("anthropic"),
            reason: s("breaker_open"),
        },
    );
    sc.at(
        9_000,
        EventKind::AttemptStarted {
            request_id: s("r3"),
            attempt: 1,
            provider: s("openai"),
            model: s("gpt-5"),
        },
    );
    sc.at(
        9_300,
        EventKind::FirstEvent {
            request_id: s("r3"),
            attempt: 1,
            provider: s("openai"),
            latency_ms: 300,
        },
    );
    sc.at(
        9_320,
        EventKind::TextDelta {
            request_id: s("r3"),
            provider: s("openai"),
            text: s("Because a brea"),
        },
    );
    sc.at(
        9_400,
        EventKind::AttemptFailed {
            request_id: s("r3"),
            attempt: 1,
            provider: s("openai"),
            phase: Phase::MidStream,
            class: ErrorClass::StreamCut,
            retryable: true,
            status: None,
            retry_after_ms: None,
            message: s("stream broke"),
            elapsed_ms: 400,
        },
    );
    sc.at(
        9_420,
        EventKind::Rewind {
            request_id: s("r3"),
            provider: s("openai"),
            discarded_chars: 14,
            reason: s("stream_cut"),
        },
    );
    answered(
        &mut sc,
        9_430,
        "r3",
        "openai",
        &["Half-open ", "lets ", "a ", "probe ", "test ", "recovery."],
        2,
    );
    finished(&mut sc, 10_100, "r3", "openai", 2, 0.0006, 0.0018);
    sc.at(
        12_000,
        EventKind::OperatorAction {
            action: s("set_fault"),
            provider: Some(s("openai")),
            detail: s("latency:first=2s,token=80ms"),
        },
    );
    sc.events
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
