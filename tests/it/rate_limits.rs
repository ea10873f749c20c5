//! Rate-limit awareness end to end, over real sockets: the simulated primary runs a
//! `rate_limit_budget` and states what is left in its real rate-limit headers (Anthropic's
//! RFC 3339 resets, OpenAI's Go durations); the engine reads them, throttles the primary as the
//! budget runs low and steers requests to the fallback before the budget is spent, so no 429 ever
//! reaches the breaker, and comes back to the primary once the budget resets. With steering off,
//! the same traffic meets the budget's 429s.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

use crate::support::demo_config::FAST_SIM;
use breakerbox::cli::CommonArgs;
use breakerbox::config::{Config, TargetEntry};
use breakerbox::engine::failover::{FailoverEngine, RequestMeta};
use breakerbox::event::{Bus, Event, EventKind, SkipReason, Source};
use breakerbox::provider::{Request, StreamEvent};
use breakerbox::session::setup::{self, Setup};

/// Requests the primary's budget allows per window.
const BUDGET: u64 = 8;
/// The budget's window.
const WINDOW: Duration = Duration::from_secs(2);

const CONFIG: &str = r#"
[retry]
max_retries = 1
min_delay = "10ms"
max_delay = "20ms"
jitter = false
retry_after_cap = "100ms"

[rate_limits]
steer_below = #STEER
"#;

/// A demo setup whose chain is `primary` then `fallback`, the primary on a budget.
async fn demo(primary: &str, fallback: &str, steer: &str) -> (Setup, FailoverEngine) {
    let text = CONFIG.replace("#STEER", steer) + FAST_SIM;
    let config = Config::parse(&text, "test config").expect("config parses");
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config, Bus::new(1 << 16), &|_| None)
        .await
        .expect("demo setup");
    let chain = [
        TargetEntry::Name(primary.into()),
        TargetEntry::Name(fallback.into()),
    ];
    let engine = setup
        .engine_for("budgeted", &chain, Default::default(), None)
        .expect("engine");
    let budget = format!(
        "rate_limit_budget:requests={BUDGET},per={}ms",
        WINDOW.as_millis()
    );
    let sim = setup.sim.as_ref().expect("demo mode has a simulator");
    sim.set_fault(primary, budget.parse().unwrap()).unwrap();
    (setup, engine)
}

/// Send one request and read its answer to the end.
async fn ask(engine: &FailoverEngine, n: usize) {
    let request = Request {
        max_tokens: 64,
        ..Request::prompt(format!("Question {n}: why do budgets reset?"))
    };
    let (_, mut stream) = engine.send(request, RequestMeta::new(Source::Ask));
    let mut done = false;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the engine never hangs")
    {
        done |= matches!(item, Ok(StreamEvent::Done { .. }));
    }
    assert!(done, "request {n} was answered");
}

/// Every event published so far.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) -> Vec<Arc<Event>> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// What a run of requests did: answers per provider, 429s, steered requests, breaker changes.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    primary: usize,
    fallback: usize,
    rate_limited: usize,
    steered: usize,
    breaker_changes: usize,
}

fn tally(events: &[Arc<Event>], primary: &str) -> Tally {
    let mut t = Tally::default();
    for e in events {
        match &e.kind {
            EventKind::RequestFinished {
                provider: Some(p), ..
            } if p == primary => t.primary += 1,
            EventKind::RequestFinished {
                provider: Some(_), ..
            } => t.fallback += 1,
            EventKind::AttemptFailed { status, .. } if *status == Some(429) => {
                t.rate_limited += 1;
            }
            EventKind::AttemptSkipped {
                provider,
                reason: SkipReason::Throttled,
                ..
            } if provider == primary => t.steered += 1,
            EventKind::BreakerChanged { .. } => t.breaker_changes += 1,
            _ => {}
        }
    }
    t
}

/// Requests in a row, then a wait past the reset, then more: (first run, second run, events).
async fn traffic(primary: &str, fallback: &str, steer: &str) -> (Tally, Tally, Vec<Arc<Event>>) {
    let (setup, engine) = demo(primary, fallback, steer).await;
    let mut rx = engine.shared().bus.subscribe();
    let started = tokio::time::Instant::now();
    for n in 0..20 {
        ask(&engine, n).await;
    }
    assert!(
        started.elapsed() < WINDOW,
        "the first run fits in the budget's window ({:?})",
        started.elapsed()
    );
    let first = drain(&mut rx);
    // Anthropic states its resets to the second, rounded up: wait past that too.
    tokio::time::sleep(WINDOW + Duration::from_millis(1_200)).await;
    for n in 20..25 {
        ask(&engine, n).await;
    }
    let second = drain(&mut rx);
    let sim = setup.sim.as_ref().unwrap();
    let outcomes = sim
        .providers()
        .into_iter()
        .find(|p| p.name == primary)
        .unwrap()
        .outcomes;
    let spent = outcomes.get("rate_limit").copied().unwrap_or(0) as usize;
    let (a, b) = (tally(&first, primary), tally(&second, primary));
    assert_eq!(
        spent,
        a.rate_limited + b.rate_limited,
        "every 429 the simulator sent reached the engine: {outcomes:?}"
    );
    let mut all = first;
    all.extend(second);
    setup.sim.unwrap().shutdown().await;
    (a, b, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_steer_past_a_primary_running_out_of_budget_and_come_back_after_the_reset() {
    for (primary, fallback) in [("anthropic", "openai"), ("openai", "anthropic")] {
        let (first, second, events) = traffic(primary, fallback, "0.05").await;
        eprintln!("{primary} primary, steering: {first:?}, after the reset: {second:?}");
        // 5 % of 8 is 0: throttled once the budget says nothing is left, before any 429.
        assert_eq!(
            first,
            Tally {
                primary: BUDGET as usize,
                fallback: 20 - BUDGET as usize,
                rate_limited: 0,
                steered: 20 - BUDGET as usize,
                breaker_changes: 0,
            },
            "{primary}"
        );
        assert_eq!(
            second,
            Tally {
                primary: 5,
                ..Tally::default()
            },
            "{primary}: back on the primary after the reset"
        );
        let changes: Vec<(bool, &str)> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::ThrottleChanged {
                    provider,
                    throttled,
                    reason,
                    ..
                } if provider == primary => Some((*throttled, reason.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(changes.len(), 2, "{primary}: {changes:?}");
        assert!(
            changes[0].0
                && changes[0]
                    .1
                    .starts_with(&format!("requests 0/{BUDGET} left")),
            "{primary}: {changes:?}"
        );
        assert_eq!(changes[1], (false, "requests reset"), "{primary}");
        // The headers were read on every response: what was left counted down to nothing.
        let left: Vec<u64> = events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::RateLimits {
                    provider, limits, ..
                } if provider == primary => limits
                    .iter()
                    .find(|l| l.dimension.as_str() == "requests")
                    .and_then(|l| l.remaining),
                _ => None,
            })
            .collect();
        assert_eq!(
            &left[..BUDGET as usize],
            &[7, 6, 5, 4, 3, 2, 1, 0],
            "{primary}"
        );
        assert!(
            events.iter().any(|e| matches!(&e.kind,
                EventKind::RateLimits { provider, limits, .. }
                    if provider == primary && limits.iter().any(|l| l.dimension.as_str() == "tokens"))),
            "{primary}: tokens are stated too"
        );
    }
}

/// The same traffic with steering off: the budget's 429s reach the engine (what the test above
/// proves does not happen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_steering_the_budgets_429s_reach_the_breaker() {
    let (first, _, events) = traffic("anthropic", "openai", "\"off\"").await;
    eprintln!("anthropic primary, steering off: {first:?}");
    assert_eq!(first.steered, 0);
    assert!(
        first.rate_limited > 0 && first.breaker_changes > 0,
        "the 429s count against the breaker until it opens: {first:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.kind.type_name() != "throttle_changed"),
        "off never throttles"
    );
}
