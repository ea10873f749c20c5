//! Full-frame render of a busy dashboard (every ring buffer full) into a `TestBackend`, at
//! 160×48 and 240×70. The aim is under a millisecond a frame, so drawing at 60 fps costs little.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::hint::black_box;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui_textarea::TextArea;

use breakerbox::console::dashboard::{
    AttemptState, AttemptView, BreakerSpan, Dashboard, ErrorCount, LATENCY_POINTS_KEPT, LOG_KEPT,
    LastError, LatencyPoint, LogLine, ProviderView, REQUESTS_KEPT, RequestView, RewindView, Totals,
};
use breakerbox::console::keys::Bindings;
use breakerbox::console::panels::{Facts, View, draw};
use breakerbox::console::ui::{LoadView, Ui};
use breakerbox::engine::breaker::BreakerState;
use breakerbox::event::{Mode, Outcome, Source};
use breakerbox::provider::{ErrorClass, Phase};

/// Thirty minutes into the session.
const NOW: i64 = 1_800;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 12, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

fn provider(i: usize) -> ProviderView {
    let mut p = ProviderView::new(&format!("provider-{i}"), "anthropic", "claude-sonnet-4-5");
    let kept = i64::try_from(LATENCY_POINTS_KEPT).unwrap();
    for k in 0..kept {
        let t = NOW - (kept - k) * 2;
        let latency = (k % 17 != 0).then_some(200 + (k as u64 * 37) % 900);
        p.latency_series.push_back(LatencyPoint {
            at: at(t),
            latency_ms: latency,
        });
        if let Some(ms) = latency {
            p.latency.record(ms).unwrap();
        }
        if t > NOW - 10 {
            p.recent_attempts.push_back(at(t));
        }
    }
    let states = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::ForcedClosed,
    ];
    p.timeline = (0..120)
        .map(|k| BreakerSpan {
            from: at(k * 15),
            state: states[(k as usize + i) % states.len()],
        })
        .collect();
    p.breaker = BreakerState::Open;
    p.open_until = Some(at(NOW + 20));
    p.threshold = Some(5);
    p.consecutive_failures = 3;
    p.successes = 5_000;
    p.failures = 300;
    p.last_error = Some(LastError {
        class: ErrorClass::Overloaded,
        phase: Phase::Headers,
        retryable: true,
        message: "529 overloaded".into(),
        at: at(NOW - 3),
    });
    p.flagged = (i == 3).then(|| "misconfigured: auth".into());
    p
}

fn requests() -> VecDeque<RequestView> {
    let reply = "The half-open state turns the guess into a measurement. ".repeat(150);
    (0..REQUESTS_KEPT)
        .map(|n| RequestView {
            id: format!("r{}", 10_000 + n),
            source: Source::Load,
            prompt: Some("Why does a circuit breaker need a half-open state?".into()),
            chain: vec!["provider-0".into(), "provider-1".into()],
            chain_name: None,
            failover_off: false,
            started_at: at(NOW - 400 + n as i64 * 2),
            text: reply.clone(),
            text_truncated: false,
            rewinds: vec![RewindView {
                provider: "provider-0".into(),
                discarded_chars: 120,
                reason: "stream_cut".into(),
            }],
            attempts: vec![
                AttemptView {
                    number: 1,
                    provider: "provider-0".into(),
                    model: "m".into(),
                    state: AttemptState::Failed {
                        class: ErrorClass::StreamCut,
                        phase: Phase::MidStream,
                        retryable: true,
                        message: "cut".into(),
                    },
                    detail: Default::default(),
                },
                AttemptView {
                    number: 2,
                    provider: "provider-1".into(),
                    model: "m".into(),
                    state: AttemptState::Streaming { latency_ms: 420 },
                    detail: Default::default(),
                },
            ],
            provider: Some("provider-1".into()),
            outcome: Some(Outcome::Ok),
            class: None,
            message: None,
            stop_reason: Some("end_turn".into()),
            total_ms: Some(2_300),
            cost_usd: 0.0123,
            unpriced: false,
        })
        .collect()
}

fn busy() -> Dashboard {
    let mut dash = Dashboard::new();
    dash.mode = Some(Mode::Demo);
    dash.started_at = Some(at(0));
    dash.now = Some(at(NOW));
    dash.recording = Some("busy.jsonl".into());
    dash.providers = (0..4).map(provider).collect();
    dash.totals = Totals {
        requests: 1_000_000,
        answered: 990_000,
        failed_over: 40_000,
        failed: 10_000,
        cancelled: 120,
        in_flight: 12,
        cost_usd: 1234.5,
        failed_cost_usd: 12.3,
        failover_delta_usd: 45.6,
        ..Totals::default()
    };
    dash.requests = requests();
    dash.log = (0..LOG_KEPT)
        .map(|n| LogLine {
            at: at(NOW - 600 + (n / 10) as i64),
            seq: n as u64,
            kind: "attempt_failed",
            provider: Some(format!("provider-{}", n % 4)),
            text: format!(
                "r{n} #1 provider-{} overloaded in headers (HTTP 529, retryable): overloaded",
                n % 4
            ),
            fields: Vec::new(),
        })
        .collect();
    for (i, class) in ErrorClass::ALL.iter().take(10).enumerate() {
        for p in 0..4 {
            dash.errors.insert(
                (format!("provider-{p}"), *class),
                ErrorCount {
                    count: (i * 7 + p) as u64,
                    retryable: i % 3 != 0,
                    last_message: format!("{class} from provider-{p}"),
                    last_at: at(NOW - i as i64),
                },
            );
        }
    }
    dash
}

fn render(c: &mut Criterion) {
    let mut dash = busy();
    let ui = Ui::default();
    let keys = Bindings::default();
    let prompt = TextArea::from(["a prompt being typed"]);
    for (w, h) in [(160, 48), (240, 70)] {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        c.bench_function(&format!("render {w}x{h}"), |b| {
            b.iter(|| frame(&mut terminal, &dash, &ui, &keys, &prompt));
        });
    }
    // The clock moving every frame: countdowns, rates and chart windows change, so more of the
    // screen is new and column widths vary (the worst case for ratatui's layout cache).
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut tick = 0;
    c.bench_function("render 160x48, clock moving", |b| {
        b.iter(|| {
            tick = (tick + 1) % 600;
            dash.now = Some(at(NOW + tick));
            frame(&mut terminal, &dash, &ui, &keys, &prompt);
        });
    });
}

fn frame(
    terminal: &mut Terminal<TestBackend>,
    dash: &Dashboard,
    ui: &Ui,
    keys: &Bindings,
    prompt: &TextArea<'static>,
) {
    let view = View {
        dash,
        ui,
        keys,
        prompt,
        facts: Facts {
            load: Some(LoadView {
                on: true,
                per_sec: 5.0,
            }),
            faults: true,
            ..Facts::default()
        },
    };
    terminal
        .draw(|f| {
            black_box(draw(f, black_box(&view)));
        })
        .unwrap();
}

criterion_group!(benches, render);
criterion_main!(benches);
