//! The console's fold (`Dashboard::apply`): how many events a second it takes, and that what it keeps
//! stays bounded however long the session runs.
//!
//! A generated stream of 1,000,000 events: requests through three providers (8 in flight, 20 text
//! deltas each), with retries, mid-stream cuts and rewinds, failovers, and the primary's breaker
//! opening, probing and closing. Events are generated in batches outside the timed section, so the
//! rate is the fold's alone; the process's resident memory is read from `/proc/self/status` at
//! checkpoints (it includes one batch of generated events, about 10,000).
//!
//! Run: `cargo bench --bench dashboard`.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark stops when its setup fails

use chrono::{DateTime, TimeDelta, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use breakerbox::console::dashboard::Dashboard;
use breakerbox::event::{Event, EventKind, FORMAT_VERSION, Mode, Outcome, ProviderInfo, Source};
use breakerbox::provider::{ErrorClass, Phase};

const EVENTS: u64 = 1_000_000;
const BATCH: usize = 10_000;
const CHECKPOINTS: [u64; 5] = [100_000, 250_000, 500_000, 750_000, 1_000_000];
const IN_FLIGHT: usize = 8;
const DELTAS_PER_REPLY: usize = 20;
/// Time between events: 1M events span about 33 minutes, past the breaker timeline's window.
const EVENT_GAP_MS: i64 = 2;
/// The primary's breaker opens once every this many requests, stays open for `OPEN_FOR` of them.
const BREAKER_CYCLE: u64 = 1_500;
const OPEN_FOR: u64 = 100;
const CHAIN: [&str; 3] = ["anthropic", "openai", "gemini"];

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants a quick run.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let before = memory();
    let mut traffic = Traffic::new();
    let mut dash = Dashboard::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut applied, mut spent, mut segment_spent, mut segment_start) =
        (0u64, Duration::ZERO, Duration::ZERO, 0u64);
    let mut rows = Vec::new();
    let mut checkpoints = CHECKPOINTS.iter().peekable();

    while applied < EVENTS {
        batch.clear();
        let n = BATCH.min((EVENTS - applied) as usize);
        batch.extend((0..n).map(|_| traffic.next_event()));
        for e in &batch {
            *kinds.entry(e.kind.type_name()).or_default() += 1;
        }
        let start = Instant::now();
        for e in &batch {
            dash.apply(black_box(e));
        }
        let took = start.elapsed();
        spent += took;
        segment_spent += took;
        applied += n as u64;
        if checkpoints.peek().is_some_and(|c| applied >= **c) {
            checkpoints.next();
            let rate = (applied - segment_start) as f64 / segment_spent.as_secs_f64();
            rows.push(Row {
                events: applied,
                rate,
                memory: memory(),
                requests: dash.requests.len(),
                log: dash.log.len(),
                spans: dash.providers.iter().map(|p| p.timeline.len()).sum(),
            });
            segment_spent = Duration::ZERO;
            segment_start = applied;
        }
    }

    println!(
        "dashboard fold: {EVENTS} events, {} requests through {} providers ({IN_FLIGHT} in flight, \
         {DELTAS_PER_REPLY} text deltas per reply)",
        dash.totals.requests,
        CHAIN.len()
    );
    let mix: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("mix: {}", mix.join(", "));
    println!(
        "answered {}, failed over {}, failed {}; breaker changes {}",
        dash.totals.answered,
        dash.totals.failed_over,
        dash.totals.failed,
        kinds.get("breaker_changed").copied().unwrap_or(0)
    );
    println!();
    println!(
        "{:>10} {:>14} {:>9} {:>10} {:>10} {:>9} {:>9} {:>7}",
        "events", "events/s", "ns/event", "VmRSS MB", "VmHWM MB", "requests", "log", "spans"
    );
    println!(
        "{:>10} {:>14} {:>9} {:>10.1} {:>10.1} {:>9} {:>9} {:>7}",
        0, "-", "-", before.rss_mb, before.hwm_mb, 0, 0, 0
    );
    for r in &rows {
        println!(
            "{:>10} {:>14.0} {:>9.0} {:>10.1} {:>10.1} {:>9} {:>9} {:>7}",
            r.events,
            r.rate,
            1e9 / r.rate,
            r.memory.rss_mb,
            r.memory.hwm_mb,
            r.requests,
            r.log,
            r.spans
        );
    }
    println!();
    println!(
        "overall: {:.0} events/s ({:.0} ns/event) over {:.2} s of folding",
        EVENTS as f64 / spent.as_secs_f64(),
        spent.as_secs_f64() * 1e9 / EVENTS as f64,
        spent.as_secs_f64()
    );
    black_box(&dash);
}

struct Row {
    events: u64,
    rate: f64,
    memory: Memory,
    requests: usize,
    log: usize,
    spans: usize,
}

#[derive(Clone, Copy)]
struct Memory {
    rss_mb: f64,
    hwm_mb: f64,
}

/// Resident memory now and at its peak (Linux); zero elsewhere.
fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Memory {
        rss_mb: kb("VmRSS:") / 1024.0,
        hwm_mb: kb("VmHWM:") / 1024.0,
    }
}

/// A deterministic stream of engine-like events.
struct Traffic {
    rng: u64,
    ts: DateTime<Utc>,
    seq: u64,
    requests: u64,
    /// Each in-flight request's remaining events; they interleave one event at a time.
    flows: VecDeque<VecDeque<EventKind>>,
    /// Breaker events wait here and go out before the next request's events.
    pending: VecDeque<EventKind>,
    primary_open: bool,
    primary_probe: bool,
}

impl Traffic {
    fn new() -> Self {
        let session = EventKind::SessionStarted {
            format_version: FORMAT_VERSION,
            mode: Mode::Demo,
            providers: CHAIN
                .iter()
                .map(|name| ProviderInfo {
                    name: name.to_string(),
                    protocol: breakerbox::provider::Protocol::Anthropic,
                    model: model(name).to_string(),
                    fault: None,
                    base_url: None,
                })
                .collect(),
            breaker_threshold: Some(5),
            breaker_counts: None,
            settings: None,
            pools: Vec::new(),
        };
        Traffic {
            rng: 0x9E37_79B9_7F4A_7C15,
            ts: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            seq: 0,
            requests: 0,
            flows: VecDeque::new(),
            pending: VecDeque::from([session]),
            primary_open: false,
            primary_probe: false,
        }
    }

    fn next_event(&mut self) -> Event {
        let kind = loop {
            if let Some(kind) = self.pending.pop_front() {
                break kind;
            }
            while self.flows.len() < IN_FLIGHT {
                let flow = self.request();
                self.flows.push_back(flow);
            }
            // Round robin over the requests in flight.
            let mut flow = self.flows.pop_front().unwrap();
            if let Some(kind) = flow.pop_front() {
                if !flow.is_empty() {
                    self.flows.push_back(flow);
                }
                break kind;
            }
        };
        self.seq += 1;
        self.ts += TimeDelta::milliseconds(EVENT_GAP_MS);
        Event {
            ts: self.ts,
            seq: self.seq,
            kind,
            gateway: None,
        }
    }

    fn roll(&mut self, below: u64) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }

    /// The next request's events, and the primary's breaker moving on its cycle.
    fn request(&mut self) -> VecDeque<EventKind> {
        self.requests += 1;
        let id = format!("r{}", self.requests);
        let mut f = Flow {
            id: id.clone(),
            events: VecDeque::new(),
            attempt: 0,
            cost: 0.0,
            failed_cost: 0.0,
        };
        f.events.push_back(EventKind::RequestStarted {
            request_id: id,
            source: Source::Load,
            chain: CHAIN.iter().map(|s| s.to_string()).collect(),
            prompt: Some("Summarise the incident in two sentences.".into()),
            prompt_chars: None,
            chain_name: None,
            failover: None,
            max_tokens: None,
            stream: None,
        });
        let phase = self.requests % BREAKER_CYCLE;
        if phase == 0 {
            self.primary_open = true;
            self.pending.push_back(breaker(
                "closed",
                "open",
                "5 consecutive failures",
                Some(30_000),
            ));
        } else if phase == OPEN_FOR {
            self.primary_open = false;
            self.primary_probe = true;
            self.pending
                .push_back(breaker("open", "half_open", "recovery elapsed", None));
        }

        let answered_by = if self.primary_open {
            f.skip("anthropic");
            "openai"
        } else {
            match self.roll(100) {
                0..80 => "anthropic",
                80..90 => {
                    f.fail(
                        "anthropic",
                        ErrorClass::Overloaded,
                        Phase::Headers,
                        Some(529),
                    );
                    "openai"
                }
                90..95 => {
                    let latency = 100 + self.roll(900);
                    f.cut("anthropic", latency, 5);
                    "openai"
                }
                _ => {
                    f.fail(
                        "anthropic",
                        ErrorClass::RateLimited,
                        Phase::Headers,
                        Some(429),
                    );
                    f.fail("openai", ErrorClass::ServerError, Phase::Headers, Some(500));
                    "gemini"
                }
            }
        };
        if self.primary_probe && answered_by == "anthropic" {
            self.primary_probe = false;
            // The probe's success closes the breaker before its request finishes.
            let latency = 100 + self.roll(1_900);
            f.answer(answered_by, latency, false);
            f.events
                .push_back(breaker("half_open", "closed", "probe succeeded", None));
            f.finish(answered_by);
        } else {
            let latency = 100 + self.roll(1_900);
            f.answer(answered_by, latency, true);
        }
        f.events
    }
}

/// One request's events as the engine would publish them.
struct Flow {
    id: String,
    events: VecDeque<EventKind>,
    attempt: u32,
    cost: f64,
    failed_cost: f64,
}

impl Flow {
    fn start(&mut self, provider: &str) {
        self.attempt += 1;
        self.events.push_back(EventKind::AttemptStarted {
            request_id: self.id.clone(),
            attempt: self.attempt,
            provider: provider.into(),
            model: model(provider).into(),
            pool: None,
        });
    }

    fn skip(&mut self, provider: &str) {
        self.events.push_back(EventKind::AttemptSkipped {
            request_id: self.id.clone(),
            provider: provider.into(),
            reason: breakerbox::event::SkipReason::BreakerOpen,
        });
    }

    fn failed(&mut self, provider: &str, class: ErrorClass, phase: Phase, status: Option<u16>) {
        self.events.push_back(EventKind::AttemptFailed {
            request_id: self.id.clone(),
            attempt: self.attempt,
            provider: provider.into(),
            phase,
            class,
            retryable: true,
            status,
            retry_after_ms: (class == ErrorClass::RateLimited).then_some(5_000),
            message: format!("{class} from {provider}"),
            elapsed_ms: 40,
        });
    }

    fn fail(&mut self, provider: &str, class: ErrorClass, phase: Phase, status: Option<u16>) {
        self.start(provider);
        self.failed(provider, class, phase, status);
    }

    fn stream(&mut self, provider: &str, latency_ms: u64, deltas: usize) {
        self.events.push_back(EventKind::FirstEvent {
            request_id: self.id.clone(),
            attempt: self.attempt,
            provider: provider.into(),
            latency_ms,
        });
        for i in 0..deltas {
            self.events.push_back(EventKind::TextDelta {
                request_id: self.id.clone(),
                provider: provider.into(),
                text: format!("word{i} and some more "),
            });
        }
    }

    fn usage(&mut self, provider: &str, output_tokens: u64) -> f64 {
        let cost = (120.0 * 3.0 + output_tokens as f64 * 15.0) / 1e6;
        self.events.push_back(EventKind::Usage {
            request_id: self.id.clone(),
            provider: provider.into(),
            model: model(provider).into(),
            input_tokens: 120,
            output_tokens,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_usd: cost,
            estimated: false,
            unpriced: false,
            response_id: None,
        });
        self.cost += cost;
        cost
    }

    /// Streams part of a reply, is cut, and the reply is withdrawn.
    fn cut(&mut self, provider: &str, latency_ms: u64, deltas: usize) {
        self.start(provider);
        self.stream(provider, latency_ms, deltas);
        self.failed_cost += self.usage(provider, 5 * deltas as u64);
        self.failed(provider, ErrorClass::StreamCut, Phase::MidStream, None);
        self.events.push_back(EventKind::Rewind {
            request_id: self.id.clone(),
            provider: provider.into(),
            discarded_chars: 20 * deltas as u64,
            reason: "stream_cut".into(),
        });
    }

    fn answer(&mut self, provider: &str, latency_ms: u64, finish: bool) {
        self.start(provider);
        self.stream(provider, latency_ms, DELTAS_PER_REPLY);
        self.usage(provider, 5 * DELTAS_PER_REPLY as u64);
        if finish {
            self.finish(provider);
        }
    }

    fn finish(&mut self, provider: &str) {
        self.events.push_back(EventKind::RequestFinished {
            request_id: self.id.clone(),
            outcome: Outcome::Ok,
            provider: Some(provider.into()),
            stop_reason: Some("end_turn".into()),
            class: None,
            message: None,
            total_ms: 1_500,
            cost_usd: self.cost,
            attempts: self.attempt,
            failed_cost_usd: self.failed_cost,
            primary_cost_usd: Some(self.cost - self.failed_cost),
            unpriced: false,
        });
    }
}

fn breaker(from: &str, to: &str, reason: &str, recovery_ms: Option<u64>) -> EventKind {
    EventKind::BreakerChanged {
        provider: "anthropic".into(),
        model: None,
        from: from.parse().expect("a name in the vocabulary"),
        to: to.parse().expect("a name in the vocabulary"),
        reason: reason.into(),
        recovery_ms,
        instance: None,
    }
}

fn model(provider: &str) -> &'static str {
    match provider {
        "anthropic" => "claude-sonnet-4-5",
        "openai" => "gpt-5",
        _ => "gemini-2.5-pro",
    }
}
