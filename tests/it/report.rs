//! Incident reports and the OTLP export on a hand-written recording with known numbers.
//!
//! Goldens live in tests/golden/; regenerate them with `UPDATE_GOLDEN=1 cargo test --test it report::`
//! and read the diff: the hand-computed asserts below pin the numbers that matter.

use std::path::{Path, PathBuf};

use crate::support::events::*;
use breakerbox::event::{Event, EventKind, Mode, Outcome, Source};
use breakerbox::provider::{ErrorClass, Phase};
use breakerbox::record::otlp::{to_otlp_json, write_otlp_json};
use breakerbox::record::reader::Reader;
use breakerbox::record::report::Report;
use breakerbox::record::{FORMAT, RECORDING_VERSION, SessionHeader};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("a valid time")
}

fn header() -> SessionHeader {
    SessionHeader {
        format: FORMAT.to_string(),
        format_version: RECORDING_VERSION,
        breakerbox_version: "0.1.0".to_string(),
        started_at: t0(),
        mode: Mode::Demo,
        providers: demo_providers()
            .into_iter()
            .map(|mut p| {
                // Where the spans' server.address and server.port come from.
                p.base_url = (p.name == "anthropic").then(|| "https://api.anthropic.com".into());
                p
            })
            .collect(),
        config: json!({"providers": ["anthropic", "openai"]}),
        redacted: false,
    }
}

/// The incident's script: the shared event builders with this file's numbers.
struct Script(Timeline);

const A: &str = "anthropic";
const O: &str = "openai";

impl Script {
    fn new() -> Script {
        Script(Timeline::new(t0()))
    }
    fn at(&mut self, ms: i64, kind: EventKind) {
        self.0.at(ms, kind);
    }
    fn start(&mut self, ms: i64, id: &str, source: Source) {
        let prompt = format!("prompt {id}");
        self.at(ms, request_started(id, source, &[A, O], Some(&prompt)));
    }
    fn attempt(&mut self, ms: i64, id: &str, n: u32, provider: &str) {
        self.at(ms, attempt_started(id, n, provider, demo_model(provider)));
    }
    fn first(&mut self, ms: i64, id: &str, n: u32, provider: &str, latency: u64) {
        self.at(ms, first_event(id, n, provider, latency));
        self.at(ms, text_delta(id, provider, "Hello"));
    }
    fn usage(&mut self, ms: i64, id: &str, provider: &str, tokens: (u64, u64), cost: f64) {
        let (model, cache_read) = if provider == A {
            ("claude-sonnet-4-5-20250929", 10)
        } else {
            ("gpt-5-2025-08-07", 0)
        };
        let tokens = [tokens.0, tokens.1, cache_read, 0];
        self.at(ms, usage(id, provider, model, tokens, cost));
    }
    #[allow(clippy::too_many_arguments)]
    fn ok(
        &mut self,
        ms: i64,
        id: &str,
        provider: &str,
        cost: f64,
        primary: f64,
        attempts: u32,
        failed: f64,
    ) {
        let end = Finished {
            provider: Some(provider),
            stop_reason: Some("end_turn"),
            cost_usd: cost,
            attempts,
            failed_cost_usd: failed,
            primary_cost_usd: Some(primary),
            unpriced: false,
            ..Finished::default()
        };
        self.at(ms, request_finished(id, end));
    }
    fn breaker(&mut self, ms: i64, provider: &str, from: &str, to: &str, reason: &str) {
        let recovery_ms = (to == "open").then_some(30_000);
        self.at(ms, breaker_changed(provider, from, to, reason, recovery_ms));
    }
    fn skip(&mut self, ms: i64, id: &str, provider: &str, reason: &str) {
        self.at(ms, attempt_skipped(id, provider, reason));
    }
    fn operator(&mut self, ms: i64, action: &str, provider: &str) {
        self.at(ms, operator_action(action, Some(provider), ""));
    }

    fn events(self) -> Vec<Event> {
        self.0.events()
    }
}

/// Latencies of the 16 load requests: with r1, r2, r7, r8 (200, 300, 400, 100) anthropic has 20
/// samples, sorted 100 120 130 140 150 160 170 180 190 200 210 220 230 240 250 260 300 400 900 1500:
/// nearest rank p50 = 10th = 200, p95 = 19th = 900, p99 = 20th = 1500.
const LOAD_LATENCIES: [u64; 16] = [
    120, 130, 140, 150, 160, 170, 180, 190, 210, 220, 230, 240, 250, 260, 900, 1500,
];

/// The incident, in order:
/// - 0 s: openai (simulated) starts with the fault `latency`.
/// - 1 s–10.2 s: 16 load requests on anthropic, $0.0001 each.
/// - r1: ok on anthropic ($0.001). r2: anthropic 429 at 12.05 s (the first failure), retried on
///   anthropic, ok ($0.002).
/// - 12.9 s: a scenario step puts anthropic on `rate_limit`.
/// - r3 at 13 s: anthropic 429 → its breaker opens (13.1 s) → openai answers ($0.0005, primary
///   price $0.001). The impact window opens at 13 s (r3's start).
/// - r4 at 15 s: anthropic skipped (breaker_open) → openai ($0.0006, primary $0.0012).
/// - r5 at 16 s: anthropic skipped; openai cut mid-stream after usage ($0.0003 wasted), rewind,
///   retried on openai ($0.0007): $0.001 in all, primary $0.0015.
/// - 18 s: the operator trips openai (forced_open); r6 at 19 s finds both closed to it and fails
///   (unavailable) at 19 s, which closes the impact window (13 s → 19 s: r3, r4, r5 failed over,
///   r6 failed); 20 s: the operator resets openai (forced open for 2 s).
/// - 42 s: the operator sets anthropic's fault to `none`.
/// - 43.1 s: anthropic half-open (open for 30 s), r7 probes and closes it at 44 s.
/// - r9 at 44.2 s has openai as its primary: ok on openai ($0.0005), latency 200 ms, outside the
///   window.
/// - r8 starts at 45 s and is still streaming when the recording ends at 45.2 s.
fn incident() -> Vec<Event> {
    let mut s = Script::new();
    let mut providers = header().providers;
    providers[1].fault = Some("latency".into());
    s.at(0, session_started(Mode::Demo, providers, Some(3)));
    for (i, lat) in LOAD_LATENCIES.iter().enumerate() {
        let t = 1000 + 500 * i as i64;
        let id = format!("l{:02}", i + 1);
        s.start(t, &id, Source::Load);
        s.attempt(t, &id, 1, A);
        s.first(t + *lat as i64, &id, 1, A, *lat);
        s.usage(t + *lat as i64 + 200, &id, A, (10, 5), 0.0001);
        s.ok(t + *lat as i64 + 200, &id, A, 0.0001, 0.0001, 1, 0.0);
    }
    // r1, r2: healthy.
    s.start(11_000, "r1", Source::Prompt);
    s.attempt(11_000, "r1", 1, A);
    s.first(11_200, "r1", 1, A, 200);
    s.usage(11_500, "r1", A, (100, 50), 0.001);
    s.ok(11_500, "r1", A, 0.001, 0.001, 1, 0.0);
    s.start(12_000, "r2", Source::Prompt);
    s.attempt(12_000, "r2", 1, A);
    s.at(
        12_050,
        EventKind::AttemptFailed {
            request_id: "r2".into(),
            attempt: 1,
            provider: A.into(),
            phase: Phase::Headers,
            class: ErrorClass::RateLimited,
            retryable: true,
            status: Some(429),
            retry_after_ms: Some(1_000),
            message: "rate limit exceeded; retry in 1 s".into(),
            elapsed_ms: 50,
        },
    );
    s.attempt(12_050, "r2", 2, A);
    s.first(12_300, "r2", 2, A, 300);
    s.usage(12_600, "r2", A, (200, 100), 0.002);
    s.ok(12_600, "r2", A, 0.002, 0.002, 1, 0.0);
    s.at(
        12_900,
        EventKind::FaultChanged {
            provider: A.into(),
            fault: "rate_limit".into(),
            reason: "scenario incident, step at 0:12".into(),
        },
    );
    // r3: rate limited, breaker opens, failover.
    s.start(13_000, "r3", Source::Prompt);
    s.attempt(13_000, "r3", 1, A);
    s.at(
        13_100,
        EventKind::AttemptFailed {
            request_id: "r3".into(),
            attempt: 1,
            provider: A.into(),
            phase: Phase::Headers,
            class: ErrorClass::RateLimited,
            retryable: true,
            status: Some(429),
            retry_after_ms: Some(30_000),
            message: "429 Too Many Requests: rate limit | exceeded".into(),
            elapsed_ms: 100,
        },
    );
    s.breaker(
        13_100,
        A,
        "closed",
        "open",
        "rate limited (retry-after 30 s)",
    );
    s.attempt(13_100, "r3", 2, O);
    s.first(13_400, "r3", 2, O, 300);
    s.usage(13_800, "r3", O, (100, 40), 0.0005);
    s.ok(13_800, "r3", O, 0.0005, 0.001, 2, 0.0);
    // r4: skipped, failover.
    s.start(15_000, "r4", Source::Prompt);
    s.skip(15_000, "r4", A, "breaker_open");
    s.attempt(15_000, "r4", 1, O);
    s.first(15_250, "r4", 1, O, 250);
    s.usage(15_600, "r4", O, (120, 48), 0.0006);
    s.ok(15_600, "r4", O, 0.0006, 0.0012, 1, 0.0);
    // r5: mid-stream cut after usage (failed-attempt cost), rewind, retry on the same provider.
    s.start(16_000, "r5", Source::Prompt);
    s.skip(16_000, "r5", A, "breaker_open");
    s.attempt(16_000, "r5", 1, O);
    s.first(16_200, "r5", 1, O, 200);
    s.usage(16_500, "r5", O, (100, 20), 0.0003);
    s.at(
        16_500,
        EventKind::AttemptFailed {
            request_id: "r5".into(),
            attempt: 1,
            provider: O.into(),
            phase: Phase::MidStream,
            class: ErrorClass::StreamCut,
            retryable: true,
            status: None,
            retry_after_ms: None,
            message: "the stream ended before the reply was complete".into(),
            elapsed_ms: 500,
        },
    );
    s.at(16_500, rewind("r5", O, 80, "stream_cut: retrying"));
    s.attempt(16_600, "r5", 2, O);
    s.first(17_000, "r5", 2, O, 400);
    s.usage(17_400, "r5", O, (100, 60), 0.0007);
    s.ok(17_400, "r5", O, 0.001, 0.0015, 2, 0.0003);
    // The operator trips openai; r6 fails; the operator resets openai.
    s.operator(18_000, "trip", O);
    s.breaker(18_000, O, "closed", "forced_open", "operator");
    s.start(19_000, "r6", Source::Prompt);
    s.skip(19_000, "r6", A, "breaker_open");
    s.skip(19_000, "r6", O, "forced_open");
    s.at(
        19_000,
        request_finished(
            "r6",
            Finished {
                outcome: Outcome::Error,
                class: Some(ErrorClass::Unavailable),
                message: Some("no target available: anthropic breaker_open, openai forced_open"),
                ..Finished::default()
            },
        ),
    );
    s.operator(20_000, "reset", O);
    s.breaker(20_000, O, "forced_open", "closed", "operator reset");
    s.at(42_000, operator_action("set_fault", Some(A), "none"));
    // Recovery: a half-open probe closes anthropic's breaker.
    s.breaker(43_100, A, "open", "half_open", "recovery elapsed");
    s.start(43_100, "r7", Source::Prompt);
    s.attempt(43_100, "r7", 1, A);
    s.first(43_500, "r7", 1, A, 400);
    s.usage(44_000, "r7", A, (100, 50), 0.001);
    s.breaker(44_000, A, "half_open", "closed", "probe succeeded");
    s.ok(44_000, "r7", A, 0.001, 0.001, 1, 0.0);
    // r9: openai's own request, outside the window.
    s.at(
        44_200,
        request_started("r9", Source::Prompt, &[O, A], Some("prompt r9")),
    );
    s.attempt(44_200, "r9", 1, O);
    s.first(44_400, "r9", 1, O, 200);
    s.usage(44_600, "r9", O, (100, 40), 0.0005);
    s.ok(44_600, "r9", O, 0.0005, 0.0005, 1, 0.0);
    // r8: still streaming at the end.
    s.start(45_000, "r8", Source::Prompt);
    s.attempt(45_000, "r8", 1, A);
    s.first(45_100, "r8", 1, A, 100);
    s.at(45_200, text_delta("r8", A, " world"));
    s.events()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("breakerbox-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir.join(name)
}

/// Write a recording: the header line, then the events, with `extra` raw lines inserted before
/// the event at each given index.
fn write_recording(path: &Path, events: &[Event], extra: &[(usize, &str)]) {
    let mut text = serde_json::to_string(&header()).expect("header serializes");
    text.push('\n');
    for (i, e) in events.iter().enumerate() {
        for (at, line) in extra {
            if *at == i {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(&serde_json::to_string(e).expect("event serializes"));
        text.push('\n');
    }
    std::fs::write(path, text).expect("the recording is written");
}

fn report_of(path: &Path) -> Report {
    Report::from_reader(Reader::open(path).expect("the recording opens"))
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("golden dir");
        std::fs::write(&path, actual).expect("golden written");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from the golden (UPDATE_GOLDEN=1 to accept):\n--- actual ---\n{actual}"
    );
}

#[test]
fn report_matches_goldens() {
    let path = scratch("incident.jsonl");
    write_recording(&path, &incident(), &[]);
    let report = report_of(&path);
    golden("report.md", &report.to_markdown());
    let json = serde_json::to_string_pretty(&report.to_json()).expect("json") + "\n";
    golden("report.json", &json);
    golden("report.html", &report.to_html());
}

/// The numbers of the incident, computed by hand (see `incident`).
#[test]
fn report_numbers_are_right() {
    let report = Report::from_events(&header(), incident().into_iter().map(Ok));
    let j = report.to_json();

    assert_eq!(j["time_range"]["duration_ms"], 45_200);
    assert_eq!(j["time_range"]["first_event"], "2026-01-01T12:00:00.000Z");
    assert_eq!(j["time_range"]["last_event"], "2026-01-01T12:00:45.200Z");
    assert_eq!(j["skipped_lines"]["count"], 0);

    let r = &j["requests"];
    assert_eq!(r["started"], 25);
    assert_eq!(r["ok"], 23);
    assert_eq!(r["error"], 1);
    assert_eq!(r["in_flight_at_end"], 1);
    assert_eq!(r["failed_by_class"], json!({"unavailable": 1}));
    // 23 ok of 24 finished.
    assert_eq!(r["success_rate"], 0.958333);
    // 16 × 0.0001 + 0.001 + 0.002 + 0.0005 + 0.0006 + 0.001 + 0.001 + 0.0005
    assert_eq!(r["cost_usd"], 0.0082);

    assert_eq!(j["failovers"]["total"], 3);
    assert_eq!(
        j["failovers"]["by_cause"],
        json!({"breaker_open": 2, "rate_limited": 1})
    );
    // r3 −0.0005, r4 −0.0006, r5 −0.0005; the others answered at the primary's price.
    assert_eq!(j["failover_cost_delta_usd"], -0.0016);
    assert_eq!(j["failover_cost_delta_requests"], 23);
    assert_eq!(j["failed_attempts_cost_usd"], 0.0003);

    let a = &j["providers"]["anthropic"];
    assert_eq!(a["attempts"], 22);
    assert_eq!(a["answered"], 19);
    assert_eq!(
        a["errors"],
        json!({"rate_limited": {
            "count": 2, "retryable": 2, "not_retryable": 0,
            "statuses": {"429": 2},
            "messages": [
                {"message": "429 Too Many Requests: rate limit | exceeded", "count": 1},
                {"message": "rate limit exceeded; retry in 1 s", "count": 1},
            ],
            "other_messages": 0,
            "first": "2026-01-01T12:00:12.050Z",
            "last": "2026-01-01T12:00:13.100Z",
        }})
    );
    assert_eq!(a["skipped"], json!({"breaker_open": 3}));
    // Open from 13.1 s to half-open at 43.1 s.
    assert_eq!(a["open_ms"], 30_000);
    assert_eq!(a["transitions"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        a["first_event_latency_ms"],
        json!({"count": 20, "p50": 200, "p95": 900, "p99": 1500,
            "inside_window": {"count": 0, "p50": null, "p95": null},
            "outside_window": {"count": 20, "p50": 200, "p95": 900}})
    );
    assert_eq!(a["cost_usd"], 0.0056);
    assert_eq!(a["failed_attempts_cost_usd"], 0.0);
    // 16 × (10, 5) + (100, 50) + (200, 100) + (100, 50); cache read 10 per usage (19).
    assert_eq!(
        a["tokens"],
        json!({"input": 560, "output": 280, "cache_read": 190, "cache_write": 0})
    );

    let o = &j["providers"]["openai"];
    assert_eq!(o["attempts"], 5);
    assert_eq!(o["answered"], 4);
    assert_eq!(o["errors"]["stream_cut"]["statuses"], json!({"none": 1}));
    assert_eq!(o["errors"]["stream_cut"]["retryable"], 1);
    assert_eq!(o["skipped"], json!({"forced_open": 1}));
    // Forced open from 18 s to 20 s.
    assert_eq!(o["open_ms"], 2_000);
    // 300 250 200 400 (in the window) and 200 (r9, after it) → 200 200 250 300 400.
    assert_eq!(
        o["first_event_latency_ms"],
        json!({"count": 5, "p50": 250, "p95": 400, "p99": 400,
            "inside_window": {"count": 4, "p50": 250, "p95": 400},
            "outside_window": {"count": 1, "p50": 200, "p95": 200}})
    );
    // Its breaker changed (forced open and back): closed at both ends.
    assert_eq!(o["state_at_start"], "closed");
    assert_eq!(o["state_at_end"], "closed");
    assert_eq!(o["fault_at_start"], "latency");
    assert_eq!(o["fault_at_end"], "latency");
    assert_eq!(a["fault_at_start"], "none");
    assert_eq!(a["fault_at_end"], "none");
    assert_eq!(o["cost_usd"], 0.0026);
    assert_eq!(o["failed_attempts_cost_usd"], 0.0003);
    assert_eq!(o["failed_attempts_with_usage"], 1);

    // Faults, the first failure, the impact window, breaker changes and operator actions, in
    // order, each with its offset.
    let timeline: Vec<String> = j["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["offset"], e["offset_ms"], e["type"], e["what"]
            )
        })
        .collect();
    let expected = [
        r#""+0:00" 0 "fault_changed" "latency (at start)""#,
        r#""+0:12" 12050 "first_failure" "first failure: rate_limited, HTTP 429: rate limit exceeded; retry in 1 s""#,
        r#""+0:12" 12900 "fault_changed" "rate_limit (scenario incident, step at 0:12)""#,
        r#""+0:13" 13000 "impact_start""#,
        r#""+0:13" 13100 "breaker_changed" "closed → open"#,
        r#""+0:18" 18000 "operator_action" "trip""#,
        r#""+0:18" 18000 "breaker_changed" "closed → forced_open"#,
        r#""+0:19" 19000 "impact_end""#,
        r#""+0:20" 20000 "operator_action" "reset""#,
        r#""+0:20" 20000 "breaker_changed" "forced_open → closed"#,
        r#""+0:42" 42000 "operator_action" "set_fault (none)""#,
        r#""+0:43" 43100 "breaker_changed" "open → half_open"#,
        r#""+0:44" 44000 "breaker_changed" "half_open → closed"#,
    ];
    assert_eq!(timeline.len(), expected.len(), "{timeline:#?}");
    for (got, want) in timeline.iter().zip(expected) {
        assert!(
            got.starts_with(want),
            "{got}\n  does not start with\n{want}"
        );
    }
}

/// The conclusions of the incident, computed by hand (see `incident`).
#[test]
fn report_names_the_root_cause_first_failure_window_and_degradation() {
    let report = Report::from_events(&header(), incident().into_iter().map(Ok));
    let j = report.to_json();
    // Two 429s on anthropic outnumber openai's one stream cut.
    let failures = j["root_cause"]["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0]["provider"], "anthropic");
    assert_eq!(failures[0]["class"], "rate_limited");
    assert_eq!(failures[1]["class"], "stream_cut");
    // Skips are consequences, apart from the failures.
    assert_eq!(
        j["root_cause"]["consequences"],
        json!([
            {"provider": "anthropic", "skipped_because": "breaker_open", "count": 3},
            {"provider": "openai", "skipped_because": "forced_open", "count": 1},
        ])
    );
    assert_eq!(j["failovers"]["caused_by_skips"], 2);
    // The first failure (r2, 12.05 s) came 1.05 s before the breaker opened (13.1 s).
    assert_eq!(
        j["first_failure"],
        json!({
            "ts": "2026-01-01T12:00:12.050Z", "offset_ms": 12_050, "provider": "anthropic",
            "class": "rate_limited", "status": 429,
            "message": "rate limit exceeded; retry in 1 s",
            "before_first_breaker_open_ms": 1_050,
        })
    );
    assert_eq!(j["first_breaker_open"]["offset_ms"], 13_100);
    // r3 starts at 13 s; r6, the last affected request, ends at 19 s.
    assert_eq!(
        j["impact_window"],
        json!({
            "start": "2026-01-01T12:00:13.000Z", "end": "2026-01-01T12:00:19.000Z",
            "start_offset_ms": 13_000, "end_offset_ms": 19_000, "duration_ms": 6_000,
            "affected_requests": 4, "failed": 1, "failed_over": 3,
        })
    );
    // Only openai answered inside the window.
    assert_eq!(
        j["latency_by_window"],
        json!({"openai": {
            "inside": {"count": 4, "p50": 250, "p95": 400},
            "outside": {"count": 1, "p50": 200, "p95": 200},
        }})
    );
    let findings: Vec<&str> = j["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        findings,
        [
            "Root cause: anthropic rate_limited, 2 failures (HTTP 429 ×2): \"429 Too Many Requests: rate limit | exceeded\" ×1, \"rate limit exceeded; retry in 1 s\" ×1.",
            "Also: openai stream_cut, 1 failure (no status ×1): \"the stream ended before the reply was complete\" ×1.",
            "First failure: 12:00:12.050 (+0:12) on anthropic, rate_limited, HTTP 429: \"rate limit exceeded; retry in 1 s\"; 1.050 s before the first breaker opened (anthropic, 12:00:13.100, +0:13).",
            "Impact window: 12:00:13.000 (+0:13) → 12:00:19.000 (+0:19), 6.000 s: 4 requests affected (3 failed over, 1 failed).",
            "Latency: openai first event p95 400 ms during the incident vs p50 200 ms outside it (p50 250 ms inside; 4 first events inside, 1 outside).",
            "Consequences, not causes: anthropic skipped 3 times (breaker_open); openai skipped once (forced_open).",
        ]
    );
    // The same facts in Markdown and HTML.
    let md = report.to_markdown();
    let html = report.to_html();
    for f in &findings {
        assert!(md.contains(&f.replace('|', "\\|")), "{f}\nnot in\n{md}");
        assert!(html.contains(&escape(f)), "{f}\nnot in the HTML");
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn open_breaker_is_clipped_to_the_end_and_initial_open_counts_from_the_start() {
    let mut s = Script::new();
    s.start(0, "x", Source::Prompt);
    // Already open when the recording began: open from 0 to 5 s.
    s.breaker(5_000, A, "open", "half_open", "recovery elapsed");
    // Opens at 8 s and is still open at the end (10 s): 2 s more.
    s.breaker(8_000, O, "closed", "open", "3 consecutive failures");
    s.at(10_000, operator_action("load", None, "end"));
    let j = Report::from_events(&header(), s.events().into_iter().map(Ok)).to_json();
    assert_eq!(j["providers"]["anthropic"]["open_ms"], 5_000);
    assert_eq!(j["providers"]["openai"]["open_ms"], 2_000);
    assert_eq!(j["providers"]["openai"]["state_at_end"], "open");
    assert_eq!(j["requests"]["in_flight_at_end"], 1);
}

/// Time throttled by rate limits is summed (a span still open clipped to the end), and the
/// requests steered away are counted, in all three forms and on the timeline.
#[test]
fn time_throttled_and_requests_steered_away_are_reported() {
    let throttle = |throttled: bool, reason: &str| EventKind::ThrottleChanged {
        provider: A.into(),
        model: None,
        throttled,
        dimension: Some(breakerbox::event::LimitDimension::Requests),
        remaining: throttled.then_some(0),
        limit: throttled.then_some(8),
        reset_ms: throttled.then_some(3_000),
        reason: reason.into(),
    };
    let mut s = Script::new();
    s.start(0, "x", Source::Prompt);
    s.at(1_000, throttle(true, "requests 0/8 left, resets in 3s"));
    s.skip(1_500, "r2", A, "throttled");
    s.skip(2_000, "r3", A, "throttled");
    s.at(4_000, throttle(false, "requests reset"));
    s.at(6_000, throttle(true, "requests 0/8 left, resets in 9s"));
    s.skip(7_000, "r4", A, "throttled");
    s.at(10_000, operator_action("load", None, "end"));
    let report = Report::from_events(&header(), s.events().into_iter().map(Ok));
    let j = report.to_json();
    let a = &j["providers"]["anthropic"];
    assert_eq!(
        (&a["throttled_ms"], &a["throttled_times"], &a["steered"]),
        (&json!(7_000), &json!(2), &json!(3))
    );
    assert_eq!(j["providers"]["openai"]["throttled_ms"], 0);
    let line = "throttled by its rate limits 2 times for 7.000 s in all; 3 requests steered to the \
                next target before a 429";
    let md = report.to_markdown();
    assert!(md.contains(&format!("- T{}.", &line[1..])), "{md}");
    assert!(md.contains("no longer throttled: requests reset"), "{md}");
    assert!(report.to_html().contains(&format!("anthropic {line}")));
}

/// A pool (issue 14): the report names it with its members and their weights, its numbers
/// together, and the requests that moved from one member to another.
#[test]
fn the_report_names_each_pool_with_its_members() {
    use breakerbox::event::{PoolInfo, PoolMemberInfo, PoolStrategy, ProviderInfo};
    let info = |name: &str| ProviderInfo {
        name: name.into(),
        protocol: "anthropic".parse().unwrap(),
        model: "claude-sonnet-4-5".into(),
        fault: None,
        base_url: None,
    };
    let providers = vec![info("us"), info("eu"), info(O)];
    let mut started = session_started(Mode::Demo, providers.clone(), Some(5));
    if let EventKind::SessionStarted { pools, .. } = &mut started {
        let member = |provider: &str, weight| PoolMemberInfo {
            provider: provider.into(),
            weight,
        };
        pools.push(PoolInfo {
            name: "claude".into(),
            strategy: PoolStrategy::Weighted,
            members: vec![member("us", 3), member("eu", 1)],
        });
    }
    let ok = |provider| Finished {
        provider: Some(provider),
        attempts: 1,
        ..Finished::default()
    };
    let mut s = Script::new();
    s.at(0, started);
    // r1 starts on us, rate-limited, and moves to eu; r2 starts on eu.
    s.at(
        10,
        request_started("r1", Source::Ask, &["us", "eu", O], None),
    );
    s.attempt(11, "r1", 1, "us");
    s.at(
        12,
        EventKind::AttemptFailed {
            request_id: "r1".into(),
            attempt: 1,
            provider: "us".into(),
            phase: Phase::Headers,
            class: ErrorClass::RateLimited,
            retryable: true,
            status: Some(429),
            retry_after_ms: Some(1_000),
            message: "rate limit exceeded".into(),
            elapsed_ms: 1,
        },
    );
    s.attempt(13, "r1", 2, "eu");
    s.first(14, "r1", 2, "eu", 300);
    s.at(15, request_finished("r1", ok("eu")));
    s.at(
        20,
        request_started("r2", Source::Ask, &["eu", "us", O], None),
    );
    s.attempt(21, "r2", 1, "eu");
    s.first(22, "r2", 1, "eu", 280);
    s.at(23, request_finished("r2", ok("eu")));
    let mut h = header();
    h.providers = providers;
    let report = Report::from_events(&h, s.events().into_iter().map(Ok));
    let md = report.to_markdown();
    assert!(md.contains("## Pools"), "{md}");
    assert!(
        md.contains("| claude | weighted | us (3), eu (1) | 3 | 2 | 1 | 1 |"),
        "{md}"
    );
    assert!(md.contains("Member of pool claude (weight 3)."), "{md}");
    let j = report.to_json();
    let pool = &j["pools"][0];
    assert_eq!(pool["name"], "claude");
    assert_eq!(pool["strategy"], "weighted");
    assert_eq!(
        pool["members"],
        json!([{"provider": "us", "weight": 3}, {"provider": "eu", "weight": 1}])
    );
    assert_eq!(pool["moved_between_members"], 1);
    assert_eq!(j["providers"]["us"]["pool"], "claude");
    assert_eq!(j["providers"][O]["pool"], Value::Null);
    let html = report.to_html();
    assert!(
        html.contains("<section id=\"pools\"><h2>Pools</h2>"),
        "{html}"
    );
    assert!(html.contains("<td>us (3), eu (1)</td>"), "{html}");
}

#[test]
fn requests_that_steered_themselves_by_header_are_counted_and_said() {
    let mut s = Script::new();
    let steered = |id: &str, chain: Option<&str>, failover: Option<bool>| {
        let mut kind = request_started(id, Source::Gateway, &[A], None);
        if let EventKind::RequestStarted {
            chain_name,
            failover: f,
            ..
        } = &mut kind
        {
            *chain_name = chain.map(str::to_string);
            *f = failover;
        }
        kind
    };
    s.at(0, steered("a", Some("fast"), None));
    s.at(1, steered("b", Some("fast"), Some(false)));
    s.at(2, steered("c", None, None));
    let report = Report::from_events(&header(), s.events().into_iter().map(Ok));
    let j = report.to_json();
    assert_eq!(
        (
            &j["requests"]["chain_by_header"],
            &j["requests"]["failover_off"]
        ),
        (&json!(2), &json!(1))
    );
    let said = "2 requests named their chain (x-breakerbox-chain); 1 turned failover off \
                (x-breakerbox-failover: off) and went to their first target only.";
    assert!(
        report.to_markdown().contains(said),
        "{}",
        report.to_markdown()
    );
    assert!(report.to_html().contains(said));
    // A recording without them says nothing of it.
    let plain = Report::from_events(&header(), incident().into_iter().map(Ok));
    assert!(plain.to_json()["requests"].get("chain_by_header").is_none());
    assert!(!plain.to_markdown().contains("x-breakerbox"));
}

/// A fallback whose model has no price: the report never calls its cost $0 — "cost unknown" for
/// it, a lower bound for the totals, in markdown and HTML; the JSON counts what it left out.
#[test]
fn a_model_without_a_price_is_reported_as_cost_unknown() {
    let mut s = Script::new();
    const L: &str = "local";
    // r1: answered by anthropic, priced. r2: anthropic cut after usage, local answers unpriced.
    s.start(0, "r1", Source::Prompt);
    s.attempt(0, "r1", 1, A);
    s.first(200, "r1", 1, A, 200);
    s.usage(900, "r1", A, (10, 20), 0.0004);
    s.ok(900, "r1", A, 0.0004, 0.0004, 1, 0.0);
    s.start(2_000, "r2", Source::Prompt);
    s.attempt(2_000, "r2", 1, A);
    s.first(2_200, "r2", 1, A, 200);
    s.usage(2_500, "r2", A, (10, 2), 0.0001);
    let cut = EventKind::AttemptFailed {
        request_id: "r2".into(),
        attempt: 1,
        provider: A.into(),
        phase: Phase::MidStream,
        class: ErrorClass::StreamCut,
        retryable: true,
        status: None,
        retry_after_ms: None,
        message: "stream cut".into(),
        elapsed_ms: 500,
    };
    s.at(2_500, cut);
    s.at(2_600, attempt_started("r2", 2, L, "llama-3.3-70b"));
    s.at(2_900, first_event("r2", 2, L, 300));
    s.at(
        3_000,
        unpriced_usage("r2", L, "llama-3.3-70b", [10, 30, 0, 0]),
    );
    let end = Finished {
        provider: Some(L),
        stop_reason: Some("end_turn"),
        cost_usd: 0.0001,
        attempts: 2,
        failed_cost_usd: 0.0001,
        primary_cost_usd: Some(0.0005),
        unpriced: true,
        ..Finished::default()
    };
    s.at(3_000, request_finished("r2", end));
    let report = Report::from_events(&header(), s.events().into_iter().map(Ok));

    let md = report.to_markdown();
    assert!(md.contains("| Cost | ≥ $0.000500 (+ unpriced) |"), "{md}");
    assert!(
        md.contains("(paid − primary's price); 1 request with unpriced usage left out |"),
        "{md}"
    );
    let local_row = md
        .lines()
        .find(|l| l.starts_with("| local |") && l.contains("cost"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(
        local_row.ends_with("| cost unknown | $0.000000 |"),
        "{local_row}"
    );
    assert!(
        md.contains("- Cost: cost unknown, of which $0.000000 on 0 failed attempts; 1 usage of a model without a price (cost unknown)."),
        "{md}"
    );
    // The delta leaves r2 out: only r1's (zero) counts.
    let j = report.to_json();
    assert_eq!(j["failover_cost_delta_requests"], 1, "{j}");
    assert_eq!(j["requests"]["unpriced_requests"], 1);
    assert_eq!(j["providers"][L]["unpriced_usages"], 1);
    assert_eq!(j["providers"][L]["cost_usd"], 0.0);
    assert!(
        j["providers"][A].get("unpriced_usages").is_none(),
        "absent when priced"
    );
    let html = report.to_html();
    assert!(html.contains("≥ $0.000500 (+ unpriced)"), "{html}");
    assert!(html.contains("<td class=\"n\">cost unknown</td>"), "{html}");
}

#[test]
fn bad_lines_are_counted_and_the_rest_is_reported() {
    let path = scratch("bad-lines.jsonl");
    let events = incident();
    let bad = [
        (
            10,
            "{\"ts\":\"2026-01-01T12:00:01.000Z\",\"seq\":1,\"type\":\"no_such_event\"}",
        ),
        (40, "\u{1}\u{2}garbage|not json"),
        (41, "{\"truncated\": "),
    ];
    write_recording(&path, &events, &bad);
    let report = report_of(&path);
    assert_eq!(report.skipped_lines(), 3);
    let j = report.to_json();
    assert_eq!(j["skipped_lines"]["count"], 3);
    assert_eq!(
        j["skipped_lines"]["first"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(j["events"], events.len());
    // The rest is the same report as without the bad lines.
    let clean = Report::from_events(&header(), incident().into_iter().map(Ok)).to_json();
    assert_eq!(j["requests"], clean["requests"]);
    assert_eq!(j["providers"], clean["providers"]);
    let md = report.to_markdown();
    assert!(md.contains("| Skipped lines | 3 |"), "{md}");
    assert!(md.contains("## Skipped lines"), "{md}");
}

#[test]
fn hostile_content_never_panics_and_stays_bounded() {
    let mut s = Script::new();
    for i in 0..200 {
        let p = format!("p{i}|\n`x`");
        s.at(i, first_event("", u32::MAX, &p, u64::MAX));
        s.skip(i, &"r".repeat(10_000 + i as usize), &p, "breaker_open");
        s.at(
            i,
            EventKind::Usage {
                request_id: "u".into(),
                provider: p,
                model: String::new(),
                input_tokens: u64::MAX,
                output_tokens: u64::MAX,
                cache_read_tokens: u64::MAX,
                cache_write_tokens: u64::MAX,
                cost_usd: f64::MAX,
                estimated: true,
                unpriced: false,
                response_id: None,
            },
        );
    }
    // Time going backwards.
    s.breaker(-5_000, "z", "open", "closed", "x");
    let events = s.events();
    let report = Report::from_events(&header(), events.clone().into_iter().map(Ok));
    let md = report.to_markdown();
    let j = report.to_json();
    assert!(j["providers"].as_object().map_or(0, |m| m.len()) <= 65);
    assert!(md.len() < 200_000, "{}", md.len());
    let html = report.to_html();
    assert!(html.len() < 400_000, "{}", html.len());
    assert!(!html.contains("<script"));
    assert!(j["providers"]["p0|\n`x`"]["state_at_end"].is_string());
    let otlp = to_otlp_json(&header(), events);
    assert!(otlp["resourceSpans"].is_array());
    // Empty input.
    let empty = Report::from_events(&header(), std::iter::empty());
    assert!(empty.to_markdown().contains("no events"));
    assert!(empty.to_html().contains("no events"));
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[test]
fn otlp_export_matches_golden_and_is_well_formed() {
    let otlp = to_otlp_json(&header(), incident());
    let text = serde_json::to_string_pretty(&otlp).expect("json") + "\n";
    golden("otlp.json", &text);
    // The same input exports the same ids.
    assert_eq!(otlp, to_otlp_json(&header(), incident()));

    let resource = &otlp["resourceSpans"][0];
    assert_eq!(
        resource["resource"]["attributes"][0],
        json!({"key": "service.name", "value": {"stringValue": "breakerbox"}})
    );
    let spans = resource["scopeSpans"][0]["spans"]
        .as_array()
        .expect("spans");
    let is_hex = |s: &Value, len: usize| {
        s.as_str()
            .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let requests: Vec<&Value> = spans
        .iter()
        .filter(|s| s.get("parentSpanId").is_none())
        .collect();
    let attempts: Vec<&Value> = spans
        .iter()
        .filter(|s| s.get("parentSpanId").is_some())
        .collect();
    assert_eq!(requests.len(), 25);
    assert_eq!(attempts.len(), 27);
    let mut ids = std::collections::HashSet::new();
    for s in spans {
        assert!(is_hex(&s["traceId"], 32), "{s}");
        assert!(is_hex(&s["spanId"], 16), "{s}");
        assert!(ids.insert(s["spanId"].clone()), "duplicate span id {s}");
        let start: u64 = s["startTimeUnixNano"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("start time");
        let end: u64 = s["endTimeUnixNano"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("end time");
        assert!(start <= end && start > 0, "{s}");
    }
    for a in &attempts {
        let parent = requests
            .iter()
            .find(|r| r["spanId"] == a["parentSpanId"])
            .unwrap_or_else(|| panic!("no request span for {a}"));
        assert_eq!(parent["traceId"], a["traceId"]);
        let (ps, pe, s, e) = (
            &parent["startTimeUnixNano"],
            &parent["endTimeUnixNano"],
            &a["startTimeUnixNano"],
            &a["endTimeUnixNano"],
        );
        let n = |v: &Value| v.as_str().and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        assert!(n(ps) <= n(s) && n(e) <= n(pe), "{a} outside {parent}");
        assert_eq!(
            attr(a, "gen_ai.operation.name"),
            Some(&json!({"stringValue": "chat"}))
        );
        assert!(attr(a, "gen_ai.provider.name").is_some(), "{a}");
        assert!(attr(a, "gen_ai.request.model").is_some(), "{a}");
    }
    // r3's first attempt: rate limited on anthropic.
    let failed = attempts
        .iter()
        .find(|a| attr(a, "error.type") == Some(&json!({"stringValue": "rate_limited"})))
        .expect("the rate-limited attempt");
    assert_eq!(failed["status"]["code"], 2);
    assert_eq!(
        attr(failed, "gen_ai.provider.name"),
        Some(&json!({"stringValue": "anthropic"}))
    );
    assert_eq!(
        attr(failed, "server.address"),
        Some(&json!({"stringValue": "api.anthropic.com"}))
    );
    assert_eq!(
        attr(failed, "server.port"),
        Some(&json!({"intValue": "443"}))
    );
    assert_eq!(
        attr(failed, "gen_ai.request.stream"),
        Some(&json!({"boolValue": true}))
    );
    // The deprecated attribute is gone from every span.
    assert!(
        spans.iter().all(|s| attr(s, "gen_ai.system").is_none()),
        "gen_ai.system is deprecated"
    );
    for r in &requests {
        assert_eq!(
            attr(r, "gen_ai.operation.name"),
            Some(&json!({"stringValue": "chat"}))
        );
        assert!(attr(r, "gen_ai.provider.name").is_some(), "{r}");
    }
    assert_eq!(
        attr(failed, "http.response.status_code"),
        Some(&json!({"intValue": "429"}))
    );
    // r6 failed; r8 is unfinished (no status), ending at the last event.
    let r6 = requests
        .iter()
        .find(|r| attr(r, "breakerbox.request_id") == Some(&json!({"stringValue": "r6"})))
        .expect("r6");
    assert_eq!(r6["status"]["code"], 2);
    let r8 = requests
        .iter()
        .find(|r| attr(r, "breakerbox.request_id") == Some(&json!({"stringValue": "r8"})))
        .expect("r8");
    assert!(r8.get("status").is_none());
    assert_eq!(r8["endTimeUnixNano"], "1767268845200000000");
    // The answering attempt of r2 carries usage as intValue strings, its 10 cached tokens
    // counted in the input as the convention counts them.
    let usage = attempts
        .iter()
        .find(|a| attr(a, "gen_ai.usage.input_tokens") == Some(&json!({"intValue": "210"})))
        .expect("r2's attempt");
    assert_eq!(
        attr(usage, "gen_ai.usage.cache_read.input_tokens"),
        Some(&json!({"intValue": "10"}))
    );
    assert_eq!(usage["status"]["code"], 1);
}

/// The GenAI conventions' attributes, both spans: cached tokens counted in the input (they are
/// apart in the events), seconds to the first chunk, finish reasons as an array, the reply's id,
/// what the caller asked (max tokens, stream), and the chain it named.
#[test]
fn otlp_spans_follow_the_genai_conventions() {
    let mut t = Timeline::new(t0());
    let mut started = request_started("r1", Source::Gateway, &["anthropic", "openai"], None);
    if let EventKind::RequestStarted {
        chain_name,
        max_tokens,
        stream,
        ..
    } = &mut started
    {
        *chain_name = Some("fast".into());
        *max_tokens = Some(256);
        *stream = Some(false);
    }
    t.at(0, started);
    t.at(1, attempt_started("r1", 1, "anthropic", "claude-x"));
    t.at(251, first_event("r1", 1, "anthropic", 250));
    let mut used = usage("r1", "anthropic", "claude-x-1", [10, 20, 300, 40], 0.01);
    if let EventKind::Usage { response_id, .. } = &mut used {
        *response_id = Some("msg_01abc".into());
    }
    t.at(900, used);
    let end = Finished {
        provider: Some("anthropic"),
        stop_reason: Some("end_turn"),
        total_ms: 900,
        attempts: 1,
        ..Finished::default()
    };
    t.at(900, request_finished("r1", end));
    let otlp = to_otlp_json(&header(), t.events());
    let spans = otlp["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .expect("spans");
    assert_eq!(spans.len(), 2);
    let (request, attempt) = (&spans[0], &spans[1]);
    let s = |v: &str| json!({"stringValue": v});
    let i = |v: &str| json!({"intValue": v});
    let reasons = json!({"arrayValue": {"values": [{"stringValue": "end_turn"}]}});
    for (key, want) in [
        ("gen_ai.provider.name", s("anthropic")),
        ("gen_ai.request.max_tokens", i("256")),
        ("gen_ai.request.stream", json!({"boolValue": false})),
        ("gen_ai.response.id", s("msg_01abc")),
        ("gen_ai.response.model", s("claude-x-1")),
        ("gen_ai.response.finish_reasons", reasons.clone()),
        ("breakerbox.chain_name", s("fast")),
    ] {
        assert_eq!(attr(request, key), Some(&want), "request {key}: {request}");
    }
    for (key, want) in [
        ("gen_ai.provider.name", s("anthropic")),
        ("server.address", s("api.anthropic.com")),
        ("server.port", i("443")),
        ("gen_ai.request.model", s("claude-x")),
        ("gen_ai.request.max_tokens", i("256")),
        // The engine streams from the provider whatever the caller asked.
        ("gen_ai.request.stream", json!({"boolValue": true})),
        ("gen_ai.response.id", s("msg_01abc")),
        ("gen_ai.response.finish_reasons", reasons),
        ("gen_ai.usage.input_tokens", i("350")),
        ("gen_ai.usage.output_tokens", i("20")),
        ("gen_ai.usage.cache_read.input_tokens", i("300")),
        ("gen_ai.usage.cache_creation.input_tokens", i("40")),
        (
            "gen_ai.response.time_to_first_chunk",
            json!({"doubleValue": 0.25}),
        ),
    ] {
        assert_eq!(attr(attempt, key), Some(&want), "attempt {key}: {attempt}");
    }
    for span in spans {
        assert!(attr(span, "gen_ai.system").is_none(), "{span}");
        assert!(
            attr(span, "breakerbox.usage.cache_read_tokens").is_none(),
            "{span}"
        );
    }
}

/// The demo incident shipped in assets/ (when present): the report must tell the story.
#[test]
fn demo_incident_report_shows_the_breaker_and_failovers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recordings/demo-incident.jsonl");
    if !path.exists() {
        eprintln!("{} not present; skipped", path.display());
        return;
    }
    let report = report_of(&path);
    let j = report.to_json();
    let opened = j["providers"]
        .as_object()
        .expect("providers")
        .values()
        .any(|p| {
            p["transitions"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["to"] == "open"))
        });
    assert!(opened, "no breaker opened:\n{}", report.to_markdown());
    assert!(
        j["failovers"]["total"].as_u64().unwrap_or(0) > 0,
        "no failovers:\n{}",
        report.to_markdown()
    );
    assert!(report.to_markdown().contains("→ open"));

    // The root cause is the overload that opened the breaker, with the provider's words, not the
    // skips it caused; the rate limit before it (mostly steered around, 6 429s met) comes next.
    let cause = &j["root_cause"]["failures"][0];
    assert_eq!(cause["provider"], "anthropic", "{cause}");
    assert_eq!(cause["class"], "overloaded", "{cause}");
    assert_eq!(cause["statuses"], json!({"529": 11}), "{cause}");
    assert_eq!(cause["messages"][0]["message"], "Overloaded", "{cause}");
    let also = &j["root_cause"]["failures"][1];
    assert_eq!(also["class"], "rate_limited", "{also}");
    assert_eq!(also["statuses"], json!({"429": 6}), "{also}");
    let message = also["messages"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("This request would exceed the rate limit"),
        "{message}"
    );
    let skipped = |why: &str, n: u64| {
        j["root_cause"]["consequences"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["skipped_because"] == why && c["count"] == n)
        })
    };
    assert!(skipped("breaker_open", 94), "{}", j["root_cause"]);
    // Steered around while its rate-limit headers said it was spent.
    assert!(skipped("throttled", 51), "{}", j["root_cause"]);
    // The first failure (a 429) came 25.8 s before the breaker opened.
    assert_eq!(j["first_failure"]["ts"], "2026-12-08T00:28:39.346Z");
    assert_eq!(j["first_failure"]["status"], 429);
    assert_eq!(j["first_failure"]["before_first_breaker_open_ms"], 25_826);
    assert_eq!(j["impact_window"]["failed_over"], 151);
    // The fallback slowed down: openai's p95 inside the window is ~1.7 s, its p50 ~310 ms.
    let inside = &j["latency_by_window"]["openai"]["inside"];
    let p95 = inside["p95"].as_u64().unwrap_or(0);
    let p50 = inside["p50"].as_u64().unwrap_or(0);
    assert!((1_600..1_800).contains(&p95), "{inside}");
    assert!((280..340).contains(&p50), "{inside}");
    // A breaker that never changed is closed, not null.
    assert_eq!(j["providers"]["openai"]["state_at_end"], "closed");
    let md = report.to_markdown();
    assert!(
        md.contains("Root cause: anthropic overloaded, 11 failures (HTTP 529 ×11)"),
        "{md}"
    );
    assert!(
        md.contains("25.826 s before the first breaker opened"),
        "{md}"
    );
    assert!(md.contains("Latency: openai first event p95 1.6"), "{md}");
}

/// The HTML report parses as a browser would parse it and holds the charts and tables, with
/// nothing fetched and no script.
#[test]
fn html_report_is_one_self_contained_page_with_charts_and_tables() {
    let report = Report::from_events(&header(), incident().into_iter().map(Ok));
    let html = report.to_html();
    let doc = scraper::Html::parse_document(&html);
    assert!(doc.errors.is_empty(), "parse errors: {:?}", doc.errors);
    assert_eq!(
        format!("{:?}", doc.quirks_mode),
        "NoQuirks",
        "a standards-mode page"
    );
    let count = |css: &str| {
        let sel = scraper::Selector::parse(css).expect("a selector");
        doc.select(&sel).count()
    };
    assert_eq!(count("html > head > style"), 1);
    assert_eq!(count("script"), 0);
    assert_eq!(count("[src]"), 0, "nothing is fetched");
    assert_eq!(count("link"), 0, "no stylesheet is fetched");
    assert_eq!(count("[href]"), 0, "no link out");
    assert_eq!(count("#latency-chart svg"), 1);
    assert_eq!(count("#breaker-chart svg"), 1);
    // A line per provider and the impact window shaded on both charts.
    assert_eq!(count("#latency-chart svg path"), 2);
    assert_eq!(count("svg rect.window"), 2);
    // anthropic: closed, open, half_open, closed; openai: closed, forced_open, closed.
    assert_eq!(count("#breaker-chart rect.st"), 7);
    assert_eq!(count("#breaker-chart rect.st.forced_open"), 1);
    for table in [
        "#summary",
        "#root-cause",
        "#failovers",
        "#latency",
        "#providers",
        "#timeline",
    ] {
        assert!(
            count(&format!("{table} table")) >= 1,
            "{table} has no table"
        );
    }
    // 13 timeline rows (as in the JSON).
    assert_eq!(count("#timeline tbody tr"), 13);
    assert_eq!(count("#findings li"), 6);
    // Every colour has its word: the breaker legend names the states.
    let legend = scraper::Selector::parse("#breaker-chart .legend").expect("a selector");
    let words: String = doc.select(&legend).flat_map(|e| e.text()).collect();
    for state in [
        "closed",
        "half_open",
        "open",
        "forced_open",
        "forced_closed",
    ] {
        assert!(words.contains(state), "{words}");
    }
}

#[test]
fn html_report_escapes_what_the_upstream_said() {
    let hostile = "<script>alert('x')</script> \"quoted\" & <img src=x onerror=alert(1)>";
    let mut s = Script::new();
    s.at(0, session_started(Mode::Demo, header().providers, Some(3)));
    s.start(0, "r1", Source::Prompt);
    s.attempt(0, "r1", 1, "<b>evil</b>");
    s.at(
        100,
        EventKind::AttemptFailed {
            request_id: "r1".into(),
            attempt: 1,
            provider: "<b>evil</b>".into(),
            phase: Phase::Headers,
            class: ErrorClass::ServerError,
            retryable: true,
            status: Some(500),
            retry_after_ms: None,
            message: hostile.into(),
            elapsed_ms: 100,
        },
    );
    s.breaker(100, "<b>evil</b>", "closed", "open", hostile);
    s.at(200, operator_action("set_fault", Some(A), hostile));
    let report = Report::from_events(&header(), s.events().into_iter().map(Ok));
    let html = report.to_html();
    assert!(!html.contains("<script"), "a script got through");
    assert!(!html.contains("<img"), "an image got through");
    assert!(!html.contains("<b>evil"), "markup in a name got through");
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;quoted&quot; &amp;")
    );
    let doc = scraper::Html::parse_document(&html);
    let sel = |css: &str| scraper::Selector::parse(css).expect("a selector");
    assert_eq!(doc.select(&sel("script, img")).count(), 0);
    assert!(
        doc.select(&sel("b"))
            .all(|b| !b.text().any(|t| t.contains("evil")))
    );
    // The text reads back as it was said.
    let cells: String = doc
        .select(&sel("#root-cause q"))
        .flat_map(|e| e.text())
        .collect();
    assert_eq!(cells, hostile);
}

#[test]
fn the_streamed_export_writes_the_same_bytes_as_the_whole_one() {
    let mut streamed = Vec::new();
    write_otlp_json(&header(), incident(), &mut streamed).expect("written");
    let whole = to_otlp_json(&header(), incident()).to_string();
    assert_eq!(String::from_utf8_lossy(&streamed), whole);
    // No events: an empty span list, still the same bytes.
    let mut empty = Vec::new();
    write_otlp_json(&header(), Vec::new(), &mut empty).expect("written");
    assert_eq!(
        String::from_utf8_lossy(&empty),
        to_otlp_json(&header(), Vec::new()).to_string()
    );
}

/// A writer into a buffer that the test can look at while the export runs.
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_export_writes_spans_as_requests_end_and_never_holds_more_than_it_must() {
    // 30,000 requests that never finish: the export holds only so many open, so spans come out
    // long before the end of the input, and none is lost.
    let n = 30_000u64;
    let out = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let spans_before_last = std::rc::Rc::new(std::cell::Cell::new(0));
    let events = {
        let (out, spans_before_last) = (out.clone(), spans_before_last.clone());
        (1..=n).map(move |seq| {
            if seq == n {
                let text = String::from_utf8_lossy(&out.borrow()).into_owned();
                spans_before_last.set(text.matches(r#""name":"request""#).count());
            }
            Event {
                ts: t0() + chrono::TimeDelta::milliseconds(seq as i64),
                seq,
                kind: request_started(&format!("r{seq}"), Source::Gateway, &[A], None),
                gateway: None,
            }
        })
    };
    write_otlp_json(&header(), events, &mut Shared(out.clone())).expect("written");
    // At most 10,000 are held open: of the 29,999 before the last, 19,999 were pushed out, and
    // all but the one pushed out by the event just read are written.
    assert_eq!(spans_before_last.get(), 19_998);
    let value: Value = serde_json::from_slice(&out.borrow()).expect("valid JSON");
    let spans = value["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array()
        .expect("spans");
    assert_eq!(spans.len() as u64, n, "every request is a span");
    assert_eq!(
        attr(&spans[0], "breakerbox.request_id"),
        Some(&json!({"stringValue": "r1"}))
    );
}
