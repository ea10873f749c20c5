//! The Prometheus `/metrics` content: a scripted fold with exact lines, escaping, bounds, the format
//! itself, and a fold of a real demo run's events.

use crate::support::demo_config::paced_sim;
use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;

use crate::support::events::*;
use breakerbox::cli::CommonArgs;
use breakerbox::config::Config;
use breakerbox::event::{
    Bus, Event, EventKind, Mode, Outcome, PoolInfo, PoolMemberInfo, PoolStrategy, ProviderInfo,
    Source,
};
use breakerbox::metrics::{LABEL_VALUES_KEPT, Metrics};
use breakerbox::provider::{ErrorClass, Phase, Request};

fn at(seq: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::milliseconds(seq as i64)
}

fn fold(kinds: Vec<EventKind>) -> Metrics {
    let mut m = Metrics::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let seq = i as u64 + 1;
        m.apply(&Event {
            ts: at(seq),
            seq,
            kind,
            gateway: None,
        });
    }
    m
}

fn failed(id: &str, n: u32, provider: &str, class: ErrorClass, retryable: bool) -> EventKind {
    EventKind::AttemptFailed {
        request_id: id.into(),
        attempt: n,
        provider: provider.into(),
        phase: Phase::Headers,
        class,
        retryable,
        status: Some(529),
        retry_after_ms: None,
        message: "overloaded".into(),
        elapsed_ms: 12,
    }
}

fn finished(id: &str, outcome: Outcome, provider: Option<&str>) -> EventKind {
    let end = Finished {
        outcome,
        provider,
        total_ms: 100,
        attempts: 1,
        ..Finished::default()
    };
    request_finished(id, end)
}

fn session(names: &[&str]) -> EventKind {
    let providers = names
        .iter()
        .map(|n| ProviderInfo {
            name: n.to_string(),
            protocol: breakerbox::provider::Protocol::Openai,
            model: "m".into(),
            fault: None,
            base_url: None,
        })
        .collect();
    session_started(Mode::Serve, providers, Some(5))
}

fn scripted() -> Vec<EventKind> {
    vec![
        session(&["anthropic", "openai"]),
        // r1: anthropic overloaded, openai answers.
        request_started("r1", Source::Gateway, &["anthropic", "openai"], None),
        attempt_started("r1", 1, "anthropic", "m"),
        failed("r1", 1, "anthropic", ErrorClass::Overloaded, true),
        attempt_started("r1", 2, "openai", "m"),
        first_event("r1", 1, "openai", 120),
        usage("r1", "openai", "m", [10, 20, 3, 0], 0.0015),
        finished("r1", Outcome::Ok, Some("openai")),
        breaker_changed("anthropic", "closed", "open", "test", None),
        // r2: anthropic skipped, openai answers fast.
        request_started("r2", Source::Prompt, &["anthropic", "openai"], None),
        attempt_skipped("r2", "anthropic", "breaker_open"),
        attempt_started("r2", 1, "openai", "m"),
        first_event("r2", 1, "openai", 40),
        rewind("r2", "openai", 5, "stream_cut"),
        usage("r2", "openai", "m", [1, 2, 0, 4], 0.0005),
        finished("r2", Outcome::Ok, Some("openai")),
        // r3: openai first and only; very slow; not a failover.
        request_started("r3", Source::Gateway, &["openai"], None),
        attempt_started("r3", 1, "openai", "m"),
        first_event("r3", 1, "openai", 31_000),
        finished("r3", Outcome::Ok, Some("openai")),
        // r4: fails on anthropic (the first) with no answer: not a failover.
        request_started("r4", Source::Gateway, &["anthropic"], None),
        attempt_started("r4", 1, "anthropic", "m"),
        failed("r4", 1, "anthropic", ErrorClass::BadRequest, false),
        finished("r4", Outcome::Error, None),
        breaker_changed("anthropic", "open", "half_open", "test", None),
        operator_action("trip", Some("anthropic"), ""),
        breaker_changed("anthropic", "half_open", "forced_open", "test", None),
    ]
}

fn lines(text: &str) -> HashSet<&str> {
    text.lines().collect()
}

#[track_caller]
fn has(text: &str, expected: &[&str]) {
    let all = lines(text);
    for line in expected {
        assert!(all.contains(line), "missing `{line}` in:\n{text}");
    }
}

#[test]
fn scripted_fold_renders_exact_lines() {
    let text = fold(scripted()).render();
    validate(&text);
    has(
        &text,
        &[
            "# TYPE breakerbox_breaker_state gauge",
            r#"breakerbox_breaker_state{provider="anthropic",state="closed"} 0"#,
            r#"breakerbox_breaker_state{provider="anthropic",state="open"} 0"#,
            r#"breakerbox_breaker_state{provider="anthropic",state="half_open"} 0"#,
            r#"breakerbox_breaker_state{provider="anthropic",state="forced_open"} 1"#,
            r#"breakerbox_breaker_state{provider="anthropic",state="forced_closed"} 0"#,
            // No change seen: openai is closed.
            r#"breakerbox_breaker_state{provider="openai",state="closed"} 1"#,
            r#"breakerbox_breaker_state{provider="openai",state="open"} 0"#,
            "# TYPE breakerbox_requests_total counter",
            r#"breakerbox_requests_total{source="gateway"} 3"#,
            r#"breakerbox_requests_total{source="prompt"} 1"#,
            r#"breakerbox_requests_total{source="load"} 0"#,
            r#"breakerbox_requests_finished_total{outcome="ok"} 3"#,
            r#"breakerbox_requests_finished_total{outcome="error"} 1"#,
            r#"breakerbox_attempts_total{provider="anthropic"} 2"#,
            r#"breakerbox_attempts_total{provider="openai"} 3"#,
            r#"breakerbox_attempt_failures_total{provider="anthropic",class="bad_request",retryable="false"} 1"#,
            r#"breakerbox_attempt_failures_total{provider="anthropic",class="overloaded",retryable="true"} 1"#,
            r#"breakerbox_attempts_skipped_total{provider="anthropic",reason="breaker_open"} 1"#,
            r#"breakerbox_failovers_total{from="anthropic",to="openai"} 2"#,
            "# TYPE breakerbox_first_event_latency_seconds histogram",
            r#"breakerbox_first_event_latency_seconds_bucket{provider="openai",le="0.05"} 1"#,
            r#"breakerbox_first_event_latency_seconds_bucket{provider="openai",le="0.1"} 1"#,
            r#"breakerbox_first_event_latency_seconds_bucket{provider="openai",le="0.25"} 2"#,
            r#"breakerbox_first_event_latency_seconds_bucket{provider="openai",le="0.5"} 2"#,
            r#"breakerbox_first_event_latency_seconds_bucket{provider="openai",le="1"} 2"#,
            r#"breakerbox_first_event_latency_seconds_bucket{provider="openai",le="30"} 2"#,
            r#"breakerbox_first_event_latency_seconds_bucket{provider="openai",le="+Inf"} 3"#,
            r#"breakerbox_first_event_latency_seconds_sum{provider="openai"} 31.16"#,
            r#"breakerbox_first_event_latency_seconds_count{provider="openai"} 3"#,
            r#"breakerbox_tokens_total{provider="openai",kind="input"} 11"#,
            r#"breakerbox_tokens_total{provider="openai",kind="output"} 22"#,
            r#"breakerbox_tokens_total{provider="openai",kind="cache_read"} 3"#,
            r#"breakerbox_tokens_total{provider="openai",kind="cache_write"} 4"#,
            r#"breakerbox_cost_usd_total{provider="openai"} 0.002"#,
            r#"breakerbox_rewinds_total{provider="openai"} 1"#,
            r#"breakerbox_operator_actions_total{action="trip"} 1"#,
            "breakerbox_events_missed_total 0",
        ],
    );
    // Only one failover pair; no latency series for a provider that never answered.
    assert_eq!(text.matches("breakerbox_failovers_total{").count(), 1);
    assert!(!text.contains(r#"_bucket{provider="anthropic""#));
    // Same fold, same bytes.
    assert_eq!(text, fold(scripted()).render());
}

/// A pool's members (issue 14) carry its name in a `pool` label on every series of theirs.
#[test]
fn pool_members_carry_their_pool_label() {
    let mut started = session(&["us", "eu", "openai"]);
    if let EventKind::SessionStarted { pools, .. } = &mut started {
        pools.push(PoolInfo {
            name: "claude".into(),
            strategy: PoolStrategy::Weighted,
            members: vec![
                PoolMemberInfo {
                    provider: "us".into(),
                    weight: 3,
                },
                PoolMemberInfo {
                    provider: "eu".into(),
                    weight: 1,
                },
            ],
        });
    }
    let member = |provider: &str, n| EventKind::AttemptStarted {
        request_id: "r1".into(),
        attempt: n,
        provider: provider.into(),
        model: "m".into(),
        pool: Some("claude".into()),
    };
    let text = fold(vec![
        started,
        request_started("r1", Source::Gateway, &["us", "eu", "openai"], None),
        member("us", 1),
        failed("r1", 1, "us", ErrorClass::RateLimited, true),
        member("eu", 2),
        first_event("r1", 2, "eu", 120),
        usage("r1", "eu", "m", [10, 20, 0, 0], 0.0015),
        finished("r1", Outcome::Ok, Some("eu")),
        breaker_changed("us", "closed", "open", "test", None),
    ])
    .render();
    validate(&text);
    has(
        &text,
        &[
            r#"breakerbox_breaker_state{provider="us",pool="claude",state="open"} 1"#,
            r#"breakerbox_breaker_state{provider="openai",state="closed"} 1"#,
            r#"breakerbox_attempts_total{provider="us",pool="claude"} 1"#,
            r#"breakerbox_attempts_total{provider="eu",pool="claude"} 1"#,
            r#"breakerbox_attempt_failures_total{provider="us",pool="claude",class="rate_limited",retryable="true"} 1"#,
            r#"breakerbox_first_event_latency_seconds_count{provider="eu",pool="claude"} 1"#,
            r#"breakerbox_tokens_total{provider="eu",pool="claude",kind="output"} 20"#,
            r#"breakerbox_cost_usd_total{provider="eu",pool="claude"} 0.0015"#,
            r#"breakerbox_failovers_total{from="us",to="eu"} 1"#,
            "# TYPE breakerbox_pool_member_weight gauge",
            r#"breakerbox_pool_member_weight{pool="claude",provider="eu"} 1"#,
            r#"breakerbox_pool_member_weight{pool="claude",provider="us"} 3"#,
        ],
    );
    assert!(!text.contains(r#"provider="openai",pool"#));
}

#[test]
fn histogram_buckets_are_cumulative_and_inf_equals_count() {
    let latencies = [
        0,
        50,
        51,
        100,
        999,
        1000,
        1001,
        29_999,
        30_000,
        30_001,
        u64::MAX / 2,
    ];
    let kinds = latencies
        .iter()
        .map(|ms| first_event("r", 1, "p", *ms))
        .collect();
    let text = fold(kinds).render();
    validate(&text);
    let buckets: Vec<(String, u64)> = text
        .lines()
        .filter(|l| l.starts_with("breakerbox_first_event_latency_seconds_bucket{"))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            (le.to_string(), value(l) as u64)
        })
        .collect();
    let les: Vec<&str> = buckets.iter().map(|(le, _)| le.as_str()).collect();
    assert_eq!(
        les,
        [
            "0.05", "0.1", "0.25", "0.5", "1", "2", "5", "10", "30", "+Inf"
        ]
    );
    let counts: Vec<u64> = buckets.iter().map(|(_, n)| *n).collect();
    assert_eq!(counts, [2, 4, 4, 4, 6, 7, 7, 7, 9, 11]);
    assert!(counts.windows(2).all(|w| w[0] <= w[1]));
    has(
        &text,
        &[r#"breakerbox_first_event_latency_seconds_count{provider="p"} 11"#],
    );
}

#[test]
fn label_values_are_escaped() {
    let hostile = "we\"ird\\na\nme";
    let text = fold(vec![
        attempt_started("r", 1, hostile, "m"),
        operator_action("set_fault", Some(hostile), ""),
    ])
    .render();
    validate(&text);
    has(
        &text,
        &[
            r#"breakerbox_attempts_total{provider="we\"ird\\na\nme"} 1"#,
            r#"breakerbox_breaker_state{provider="we\"ird\\na\nme",state="closed"} 1"#,
            r#"breakerbox_operator_actions_total{action="set_fault"} 1"#,
        ],
    );
    assert_eq!(
        breakerbox::metrics::escape_label("a\\b\"c\nd"),
        r#"a\\b\"c\nd"#
    );
}

/// The tokens of a model without a price are counted apart: the cost counter leaves them out.
#[test]
fn unpriced_tokens_are_counted_apart_from_the_cost() {
    let m = fold(vec![
        usage("r1", "openai", "gpt-6.2-sol", [10, 20, 0, 0], 0.0002),
        unpriced_usage("r2", "local", "llama-3.3-70b", [30, 40, 5, 0]),
    ]);
    let text = m.render();
    for line in [
        r#"breakerbox_cost_usd_total{provider="openai"} 0.0002"#,
        r#"breakerbox_cost_usd_total{provider="local"} 0"#,
        r#"breakerbox_unpriced_tokens_total{provider="local",kind="input"} 30"#,
        r#"breakerbox_unpriced_tokens_total{provider="local",kind="output"} 40"#,
        r#"breakerbox_unpriced_tokens_total{provider="local",kind="cache_read"} 5"#,
        r#"breakerbox_tokens_total{provider="local",kind="input"} 30"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(!text.contains(r#"breakerbox_unpriced_tokens_total{provider="openai""#));
}

/// The version, requests in flight, the whole-request duration histogram by outcome, and the
/// gateway's own refusals by reason.
#[test]
fn build_info_in_flight_durations_and_rejections() {
    let rejected = |reason| EventKind::RequestRejected {
        reason,
        status: 404,
        protocol: breakerbox::event::Protocol::Openai,
        message: "model `x` has no route".into(),
    };
    let mut long = finished("r2", Outcome::Error, None);
    if let EventKind::RequestFinished { total_ms, .. } = &mut long {
        *total_ms = 45_000;
    }
    let events = vec![
        request_started("r1", Source::Gateway, &["a"], None),
        request_started("r2", Source::Gateway, &["a"], None),
        request_started("r3", Source::Gateway, &["a"], None),
        finished("r1", Outcome::Ok, Some("a")),
        long,
        rejected(breakerbox::event::RejectReason::UnknownModel),
        rejected(breakerbox::event::RejectReason::UnknownModel),
        rejected(breakerbox::event::RejectReason::Auth),
    ];
    let text = fold(events).render();
    validate(&text);
    has(
        &text,
        &[
            &format!(
                "breakerbox_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
            "breakerbox_requests_in_flight 1",
            "breakerbox_request_duration_seconds_bucket{outcome=\"ok\",le=\"0.1\"} 1",
            "breakerbox_request_duration_seconds_bucket{outcome=\"error\",le=\"30\"} 0",
            "breakerbox_request_duration_seconds_bucket{outcome=\"error\",le=\"60\"} 1",
            "breakerbox_request_duration_seconds_bucket{outcome=\"error\",le=\"+Inf\"} 1",
            "breakerbox_request_duration_seconds_sum{outcome=\"error\"} 45",
            "breakerbox_request_duration_seconds_count{outcome=\"ok\"} 1",
            "breakerbox_gateway_rejected_total{reason=\"unknown_model\"} 2",
            "breakerbox_gateway_rejected_total{reason=\"auth\"} 1",
            "breakerbox_gateway_rejected_total{reason=\"too_large\"} 0",
        ],
    );
}

#[test]
fn help_and_type_appear_once_per_family_in_a_stable_order() {
    let text = fold(scripted()).render();
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        families,
        [
            "breakerbox_build_info",
            "breakerbox_breaker_state",
            "breakerbox_requests_total",
            "breakerbox_requests_finished_total",
            "breakerbox_requests_in_flight",
            "breakerbox_request_duration_seconds",
            "breakerbox_gateway_rejected_total",
            "breakerbox_attempts_total",
            "breakerbox_attempt_failures_total",
            "breakerbox_attempts_skipped_total",
            "breakerbox_failovers_total",
            "breakerbox_first_event_latency_seconds",
            "breakerbox_tokens_total",
            "breakerbox_cost_usd_total",
            "breakerbox_unpriced_tokens_total",
            "breakerbox_rate_limit_remaining",
            "breakerbox_rate_limit_limit",
            "breakerbox_rate_limit_reset_seconds",
            "breakerbox_throttled",
            "breakerbox_rewinds_total",
            "breakerbox_recovery_probes_total",
            "breakerbox_pool_member_weight",
            "breakerbox_cluster_connected",
            "breakerbox_operator_actions_total",
            "breakerbox_events_missed_total",
        ]
    );
    for family in &families {
        assert_eq!(
            text.matches(&format!("# HELP {family} ")).count(),
            1,
            "{family}"
        );
        assert_eq!(
            text.matches(&format!("# TYPE {family} ")).count(),
            1,
            "{family}"
        );
    }
    // An empty fold still names every family (and nothing else breaks).
    let empty = Metrics::new().render();
    validate(&empty);
    assert_eq!(empty.matches("# TYPE ").count(), families.len());
}

#[test]
fn labels_are_bounded_and_hostile_input_never_panics() {
    let mut kinds = Vec::new();
    for i in 0..(LABEL_VALUES_KEPT + 10) {
        kinds.push(attempt_started("r", 1, &format!("p{i:03}"), "m"));
        let reason =
            breakerbox::event::SkipReason::ALL[i % breakerbox::event::SkipReason::ALL.len()];
        kinds.push(attempt_skipped("r", "p000", reason.as_str()));
    }
    kinds.push(breaker_changed(
        &format!("p{:03}", LABEL_VALUES_KEPT + 5),
        "closed",
        "open",
        "test",
        None,
    ));
    kinds.push(attempt_started("r", 1, &"é".repeat(10_000), "m"));
    kinds.push(attempt_started("r", 1, "", "m"));
    kinds.push(usage(
        "r",
        "p000",
        "m",
        [u64::MAX, u64::MAX, 0, 0],
        f64::NAN,
    ));
    kinds.push(usage("r", "p000", "m", [u64::MAX, 1, 0, 0], f64::INFINITY));
    kinds.push(usage("r", "p000", "m", [0, 0, 0, 0], -1.0));
    kinds.push(usage("r", "p000", "m", [0, 0, 0, 0], f64::MAX));
    kinds.push(usage("r", "p000", "m", [0, 0, 0, 0], f64::MAX));
    kinds.push(request_started("x", Source::Load, &[], None));
    kinds.push(finished("x", Outcome::Ok, Some("p001")));
    kinds.push(finished("never-started", Outcome::Ok, Some("p001")));
    // How many of the skips above name the reason at this index of `SkipReason::ALL`.
    let skips_of = |index: usize| {
        (0..LABEL_VALUES_KEPT + 10)
            .filter(|i| i % breakerbox::event::SkipReason::ALL.len() == index)
            .count()
    };
    let mut m = fold(kinds);
    m.missed(u64::MAX);
    m.missed(3);
    let text = m.render();
    validate(&text);
    let attempt_series = text
        .lines()
        .filter(|l| l.starts_with("breakerbox_attempts_total{"))
        .count();
    assert_eq!(attempt_series, LABEL_VALUES_KEPT + 1, "64 kept plus other");
    let gauges = text
        .lines()
        .filter(|l| l.starts_with("breakerbox_breaker_state{"))
        .count();
    assert_eq!(gauges, LABEL_VALUES_KEPT * 5, "no gauge for `other`");
    has(
        &text,
        &[
            r#"breakerbox_attempts_total{provider="other"} 12"#,
            // Skip reasons are a closed set: each its own series, none lumped into `other`.
            &format!(
                r#"breakerbox_attempts_skipped_total{{provider="p000",reason="breaker_open"}} {}"#,
                skips_of(0)
            ),
            &format!(
                r#"breakerbox_attempts_skipped_total{{provider="p000",reason="cannot_continue"}} {}"#,
                skips_of(5)
            ),
            r#"breakerbox_tokens_total{provider="p000",kind="input"} 18446744073709551615"#,
            &format!(
                "breakerbox_cost_usd_total{{provider=\"p000\"}} {}",
                f64::MAX
            ),
            "breakerbox_events_missed_total 18446744073709551615",
        ],
    );
    assert_eq!(text.matches("breakerbox_failovers_total{").count(), 0);
}

#[test]
fn the_request_map_is_bounded_and_still_counts_recent_failovers() {
    let mut m = Metrics::new();
    for i in 0..120_000u64 {
        m.apply_kind(&request_started(
            &format!("r{i}"),
            Source::Load,
            &["a", "b"],
            None,
        ));
    }
    // The oldest were forgotten; the newest still count.
    m.apply_kind(&finished("r0", Outcome::Ok, Some("b")));
    m.apply_kind(&finished("r119999", Outcome::Ok, Some("b")));
    has(
        &m.render(),
        &[r#"breakerbox_failovers_total{from="a",to="b"} 1"#],
    );
}

/// The demo engine with the primary overloaded: failures and failovers show in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_run_folds_into_failovers_and_failures() {
    const CONFIG: &str = r#"
[timeouts]
connect = "500ms"
headers = "500ms"
first_event = "500ms"
idle = "500ms"
total = "10s"

[retry]
max_retries = 1
min_delay = "10ms"
max_delay = "20ms"
jitter = false

[sim]
seed = 3
"#;
    let config =
        Config::parse(&format!("{CONFIG}{}", paced_sim()), "test config").expect("config parses");
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let bus = Bus::new(1 << 16);
    let mut rx = bus.subscribe();
    let setup = breakerbox::session::setup::build(&common, &config, bus, &|_| None)
        .await
        .expect("demo setup");
    let engine = setup.engine(None).expect("engine");
    setup
        .sim
        .as_ref()
        .unwrap()
        .set_fault("anthropic", "overloaded".parse().unwrap())
        .unwrap();

    const REQUESTS: usize = 3;
    for i in 0..REQUESTS {
        let (_, mut stream) = engine.send(
            Request::prompt(format!("question {i}")),
            breakerbox::engine::failover::RequestMeta::new(Source::Gateway),
        );
        while tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("the engine never hangs")
            .is_some()
        {}
    }

    let mut metrics = Metrics::new();
    let mut events = 0;
    while let Ok(e) = rx.try_recv() {
        metrics.apply(&e);
        events += 1;
    }
    assert!(events > 0);
    let text = metrics.render();
    validate(&text);

    let get = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(value)
            .unwrap_or(0.0)
    };
    assert_eq!(
        get(r#"breakerbox_requests_total{source="gateway"}"#),
        REQUESTS as f64,
        "{text}"
    );
    assert_eq!(
        get(r#"breakerbox_requests_finished_total{outcome="ok"}"#),
        REQUESTS as f64,
        "{text}"
    );
    assert_eq!(
        get(r#"breakerbox_failovers_total{from="anthropic",to="openai"}"#),
        REQUESTS as f64,
        "{text}"
    );
    assert!(
        get(
            r#"breakerbox_attempt_failures_total{provider="anthropic",class="overloaded",retryable="true"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(
        get(r#"breakerbox_attempts_total{provider="openai"}"#) >= REQUESTS as f64,
        "{text}"
    );
    assert!(
        get(r#"breakerbox_first_event_latency_seconds_count{provider="openai"}"#)
            >= REQUESTS as f64,
        "{text}"
    );
    assert!(
        get(r#"breakerbox_tokens_total{provider="openai",kind="output"}"#) > 0.0,
        "{text}"
    );
}

/// The sample's value (the text after the last space).
fn value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Checks the exposition format: comments are `# HELP name text` or `# TYPE name kind`, once per family
/// and before its samples; every sample is
/// `^[a-zA-Z_:][a-zA-Z0-9_:]*(\{label="escaped",…\})? [0-9.eE+-]+$`; a family's samples are contiguous.
#[track_caller]
fn validate(text: &str) {
    assert!(text.ends_with('\n'), "ends with a newline");
    let mut typed: Vec<(String, String)> = Vec::new();
    let mut helped = HashSet::new();
    let mut closed_families = HashSet::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_metric_name(name), "{line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(parts.next().is_none(), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(typed.iter().all(|(n, _)| n != name), "TYPE twice: {line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter not named _total: {line}");
            }
            if let Some(prev) = current.replace(name.to_string()) {
                closed_families.insert(prev);
            }
            typed.push((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let name = check_sample(line);
        let (family, kind) = typed
            .last()
            .unwrap_or_else(|| panic!("sample before TYPE: {line}"));
        let ok = match kind.as_str() {
            "histogram" => [
                format!("{family}_bucket"),
                format!("{family}_sum"),
                format!("{family}_count"),
            ]
            .contains(&name.to_string()),
            _ => name == family,
        };
        assert!(ok, "sample `{name}` outside its family `{family}`: {line}");
        assert!(helped.contains(family.as_str()), "no HELP for {family}");
        assert!(!closed_families.contains(family.as_str()), "{line}");
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Validates one sample line and returns its metric name.
#[track_caller]
fn check_sample(line: &str) -> &str {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(is_metric_name(name), "bad name: {line}");
    let mut rest = &line[name_end..];
    if let Some(labels) = rest.strip_prefix('{') {
        let mut s = labels;
        loop {
            let eq = s.find('=').unwrap_or_else(|| panic!("bad labels: {line}"));
            let label = &s[..eq];
            assert!(
                is_metric_name(label) && !label.contains(':'),
                "bad label name `{label}`: {line}"
            );
            s = s[eq..]
                .strip_prefix("=\"")
                .unwrap_or_else(|| panic!("unquoted label: {line}"));
            // The escaped value: only \\, \" and \n escapes, no raw quote or newline.
            let mut chars = s.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        let (_, e) = chars
                            .next()
                            .unwrap_or_else(|| panic!("dangling \\: {line}"));
                        assert!(matches!(e, '\\' | '"' | 'n'), "bad escape \\{e}: {line}");
                    }
                    Some((i, '"')) => break i,
                    Some((_, c)) => assert!(c != '\n', "raw newline: {line}"),
                    None => panic!("unterminated label value: {line}"),
                }
            };
            s = &s[end + 1..];
            if let Some(after) = s.strip_prefix(',') {
                s = after;
            } else if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            } else {
                panic!("bad label separator: {line}");
            }
        }
    }
    let v = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before value: {line}"));
    assert!(
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')),
        "bad value `{v}`: {line}"
    );
    assert!(
        v.parse::<f64>().is_ok_and(f64::is_finite),
        "bad value `{v}`: {line}"
    );
    name
}

fn probe_finished(provider: &str, probe: u32, ok: bool, cost_usd: f64) -> EventKind {
    EventKind::ProbeFinished {
        provider: provider.into(),
        model: None,
        probe,
        ok,
        latency_ms: 40,
        class: (!ok).then_some(ErrorClass::Overloaded),
        status: (!ok).then_some(529),
        message: None,
        input_tokens: 8,
        output_tokens: u64::from(ok),
        cost_usd,
        next_probe_ms: (!ok).then_some(3_000),
        unpriced: false,
    }
}

#[test]
fn recovery_probes_are_counted_by_outcome_and_costed() {
    let mut kinds = vec![session(&["anthropic", "openai"])];
    kinds.push(probe_finished("anthropic", 1, false, 0.25));
    kinds.push(probe_finished("anthropic", 2, false, 0.25));
    kinds.push(probe_finished("anthropic", 3, true, 0.5));
    let text = fold(kinds).render();
    validate(&text);
    has(
        &text,
        &[
            r#"breakerbox_recovery_probes_total{provider="anthropic",outcome="answered"} 1"#,
            r#"breakerbox_recovery_probes_total{provider="anthropic",outcome="failed"} 2"#,
            r#"breakerbox_cost_usd_total{provider="anthropic"} 1"#,
        ],
    );
}

/// What the providers' latest responses said of their rate limits, as gauges, and whether each
/// is throttled; a steered request is a skip with reason `throttled`.
#[test]
fn rate_limits_and_throttling_are_gauges() {
    use breakerbox::event::{LimitDimension, RateLimit};
    let limits = |remaining: u64, reset_ms: u64| EventKind::RateLimits {
        provider: "anthropic".into(),
        model: None,
        limits: vec![
            RateLimit {
                dimension: LimitDimension::Requests,
                limit: Some(20),
                remaining: Some(remaining),
                reset_ms: Some(reset_ms),
            },
            RateLimit {
                dimension: LimitDimension::Tokens,
                limit: None,
                remaining: Some(90_000),
                reset_ms: None,
            },
        ],
    };
    let throttle = |throttled: bool| EventKind::ThrottleChanged {
        provider: "anthropic".into(),
        model: None,
        throttled,
        dimension: Some(LimitDimension::Requests),
        remaining: Some(1),
        limit: Some(20),
        reset_ms: Some(9_500),
        reason: "requests 1/20 left, resets in 10s".into(),
    };
    let text = fold(vec![
        limits(5, 30_000),
        limits(1, 9_500),
        throttle(true),
        attempt_skipped("r9", "anthropic", "throttled"),
    ])
    .render();
    validate(&text);
    has(
        &text,
        &[
            r#"breakerbox_rate_limit_remaining{provider="anthropic",dimension="requests"} 1"#,
            r#"breakerbox_rate_limit_remaining{provider="anthropic",dimension="tokens"} 90000"#,
            r#"breakerbox_rate_limit_limit{provider="anthropic",dimension="requests"} 20"#,
            r#"breakerbox_rate_limit_reset_seconds{provider="anthropic",dimension="requests"} 9.5"#,
            r#"breakerbox_throttled{provider="anthropic"} 1"#,
            r#"breakerbox_attempts_skipped_total{provider="anthropic",reason="throttled"} 1"#,
        ],
    );
    assert!(
        !text.contains(r#"breakerbox_rate_limit_limit{provider="anthropic",dimension="tokens"}"#)
    );
    let lifted = fold(vec![limits(1, 9_500), throttle(true), throttle(false)]).render();
    has(
        &lifted,
        &[r#"breakerbox_throttled{provider="anthropic"} 0"#],
    );
}

/// The gateway's own refusals are events (`request_rejected`) and counted in `/metrics` by reason.
#[tokio::test]
async fn the_gateways_refusals_are_events_and_counted() {
    let config = Config::parse(&paced_sim(), "t.toml").unwrap();
    let (running, _sim, bus) = breakerbox::gateway::start_demo(&config, &[], Some("tok".into()))
        .await
        .unwrap();
    let mut rx = bus.subscribe();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let post = |body: &'static str, key: &'static str| {
        http.post(format!("{base}/v1/chat/completions"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(post("{}", "wrong").await.unwrap().status(), 401);
    assert_eq!(post("not json", "tok").await.unwrap().status(), 400);
    let mut reasons = Vec::new();
    while reasons.len() < 2 {
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event")
            .expect("the bus");
        if let EventKind::RequestRejected {
            reason,
            status,
            message,
            ..
        } = &event.kind
        {
            assert!(!message.contains("tok\""), "{message}");
            reasons.push((reason.as_str(), *status));
        }
    }
    assert_eq!(reasons, [("auth", 401), ("bad_request", 400)]);
    // The metrics fold runs on its own task: give it a moment to have both.
    let text = crate::support::scrape::metrics_once(&http, &base, "the bad request", |text| {
        text.contains("breakerbox_gateway_rejected_total{reason=\"bad_request\"} 1")
    })
    .await;
    has(
        &text,
        &[
            "breakerbox_gateway_rejected_total{reason=\"auth\"} 1",
            "breakerbox_gateway_rejected_total{reason=\"bad_request\"} 1",
            "breakerbox_requests_in_flight 0",
        ],
    );
    running.stop().await;
}

#[test]
fn the_fleet_link_is_a_gauge_only_in_a_fleet() {
    let link = |connected: bool| EventKind::ClusterChanged {
        instance: "gw-1".into(),
        connected,
        redis: "127.0.0.1:6379".into(),
        reason: "test".into(),
    };
    let alone = fold(vec![]).render();
    assert!(alone.contains("# TYPE breakerbox_cluster_connected gauge"));
    assert!(
        !alone
            .lines()
            .any(|l| l.starts_with("breakerbox_cluster_connected "))
    );
    let lost = fold(vec![link(true), link(false)]).render();
    validate(&lost);
    has(&lost, &["breakerbox_cluster_connected 0"]);
    has(
        &fold(vec![link(false), link(true)]).render(),
        &["breakerbox_cluster_connected 1"],
    );
}
