//! The incident report on a 1,000,000-event recording: time and peak memory (issue 5: < 2 s and
//! < 100 MB RSS in release). Run with `cargo bench --bench report`.

use std::io::Write;
use std::time::Instant;

use breakerbox::event::{Event, EventKind, Mode, Outcome, ProviderInfo, Source};
use breakerbox::provider::{ErrorClass, Phase};
use breakerbox::record::reader::Reader;
use breakerbox::record::report::Report;
use breakerbox::record::{FORMAT, RECORDING_VERSION, SessionHeader};
use chrono::{DateTime, Duration, TimeZone, Utc};

const EVENTS: u64 = 1_000_000;
const PROVIDERS: [(&str, &str, &str); 3] = [
    ("anthropic", "anthropic", "claude-sonnet-4-5"),
    ("openai", "openai", "gpt-5"),
    ("backup", "openai", "gpt-5-mini"),
];

struct Gen<W: Write> {
    out: W,
    seq: u64,
    t0: DateTime<Utc>,
    ms: i64,
}

impl<W: Write> Gen<W> {
    fn emit(&mut self, kind: EventKind) -> std::io::Result<()> {
        self.seq += 1;
        let event = Event {
            ts: self.t0 + Duration::milliseconds(self.ms),
            seq: self.seq,
            kind,
            gateway: None,
        };
        serde_json::to_writer(&mut self.out, &event)?;
        self.out.write_all(b"\n")
    }
}

/// A realistic mix: requests through a chain of three, 20 text deltas each; every 7th request's
/// primary is rate limited (fails over), every 13th is cut mid-stream and retried, every 50th
/// fails outright; the primary's breaker flaps every 500 requests.
fn generate(path: &std::path::Path) -> std::io::Result<()> {
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let header = SessionHeader {
        format: FORMAT.to_string(),
        format_version: RECORDING_VERSION,
        breakerbox_version: "bench".into(),
        started_at: t0,
        mode: Mode::Demo,
        providers: PROVIDERS
            .iter()
            .map(|(n, p, m)| ProviderInfo {
                name: (*n).into(),
                protocol: p.parse().unwrap_or(breakerbox::provider::Protocol::Openai),
                model: (*m).into(),
                fault: None,
                base_url: None,
            })
            .collect(),
        config: serde_json::Value::Null,
        redacted: false,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    serde_json::to_writer(&mut out, &header)?;
    out.write_all(b"\n")?;
    let chain: Vec<String> = PROVIDERS.iter().map(|p| p.0.to_string()).collect();
    let mut g = Gen {
        out,
        seq: 0,
        t0,
        ms: 0,
    };
    let mut n: u64 = 0;
    while g.seq < EVENTS {
        n += 1;
        let id = format!("req-{n}");
        g.ms += 50;
        g.emit(EventKind::RequestStarted {
            request_id: id.clone(),
            source: Source::Load,
            chain: chain.clone(),
            prompt: Some("Summarise the incident in one paragraph.".into()),
            prompt_chars: None,
            chain_name: None,
            failover: None,
            max_tokens: None,
            stream: None,
        })?;
        if n.is_multiple_of(500) {
            g.emit(EventKind::BreakerChanged {
                provider: "anthropic".into(),
                model: None,
                from: breakerbox::event::BreakerState::Closed,
                to: breakerbox::event::BreakerState::Open,
                reason: "3 consecutive failures".into(),
                recovery_ms: Some(30_000),
                instance: None,
            })?;
        }
        if n % 500 == 20 {
            g.emit(EventKind::BreakerChanged {
                provider: "anthropic".into(),
                model: None,
                from: breakerbox::event::BreakerState::Open,
                to: breakerbox::event::BreakerState::Closed,
                reason: "probe succeeded".into(),
                recovery_ms: None,
                instance: None,
            })?;
        }
        let mut attempt = 1;
        let mut provider = 0usize;
        if n.is_multiple_of(7) {
            g.emit(EventKind::AttemptStarted {
                request_id: id.clone(),
                attempt,
                provider: "anthropic".into(),
                model: "claude-sonnet-4-5".into(),
                pool: None,
            })?;
            g.emit(EventKind::AttemptFailed {
                request_id: id.clone(),
                attempt,
                provider: "anthropic".into(),
                phase: Phase::Headers,
                class: ErrorClass::RateLimited,
                retryable: true,
                status: Some(429),
                retry_after_ms: Some(1000),
                message: "rate limited".into(),
                elapsed_ms: 80,
            })?;
            attempt += 1;
            provider = 1;
        }
        if n.is_multiple_of(50) {
            g.emit(EventKind::RequestFinished {
                request_id: id.clone(),
                outcome: Outcome::Error,
                provider: None,
                stop_reason: None,
                class: Some(ErrorClass::Unavailable),
                message: Some("every target failed".into()),
                total_ms: 100,
                cost_usd: 0.0,
                attempts: attempt,
                failed_cost_usd: 0.0,
                primary_cost_usd: None,
                unpriced: false,
            })?;
            continue;
        }
        let (name, _, model) = PROVIDERS[provider];
        let cut = n.is_multiple_of(13);
        for round in 0..if cut { 2 } else { 1 } {
            g.emit(EventKind::AttemptStarted {
                request_id: id.clone(),
                attempt,
                provider: name.into(),
                model: model.into(),
                pool: None,
            })?;
            g.ms += 1;
            g.emit(EventKind::FirstEvent {
                request_id: id.clone(),
                attempt,
                provider: name.into(),
                latency_ms: 150 + (n * 37 % 400),
            })?;
            for _ in 0..20 {
                g.emit(EventKind::TextDelta {
                    request_id: id.clone(),
                    provider: name.into(),
                    text: "some words of reply ".into(),
                })?;
            }
            g.emit(EventKind::Usage {
                request_id: id.clone(),
                provider: name.into(),
                model: model.into(),
                input_tokens: 120,
                output_tokens: 80,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_usd: 0.0012,
                estimated: false,
                unpriced: false,
                response_id: None,
            })?;
            if cut && round == 0 {
                g.emit(EventKind::AttemptFailed {
                    request_id: id.clone(),
                    attempt,
                    provider: name.into(),
                    phase: Phase::MidStream,
                    class: ErrorClass::StreamCut,
                    retryable: true,
                    status: None,
                    retry_after_ms: None,
                    message: "the stream ended before the reply was complete".into(),
                    elapsed_ms: 400,
                })?;
                g.emit(EventKind::Rewind {
                    request_id: id.clone(),
                    provider: name.into(),
                    discarded_chars: 400,
                    reason: "stream_cut".into(),
                })?;
                attempt += 1;
            }
        }
        g.emit(EventKind::RequestFinished {
            request_id: id,
            outcome: Outcome::Ok,
            provider: Some(name.into()),
            stop_reason: Some("end_turn".into()),
            class: None,
            message: None,
            total_ms: 600,
            cost_usd: if cut { 0.0024 } else { 0.0012 },
            attempts: attempt,
            failed_cost_usd: if cut { 0.0012 } else { 0.0 },
            primary_cost_usd: Some(0.0015),
            unpriced: false,
        })?;
    }
    g.out.flush()
}

/// Peak resident set size in kB, from /proc (Linux only).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // `cargo test --benches` runs bench targets too: only do the work under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("breakerbox-bench-report-{}", std::process::id()));
    let path = dir.join("million.jsonl");
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| generate(&path)) {
        eprintln!("cannot write the recording: {e}");
        return;
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let rss_before = peak_rss_kb();

    let start = Instant::now();
    let reader = match Reader::open(&path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let header = reader.header().clone();
    let mut count = 0u64;
    let report = Report::from_events(&header, reader.inspect(|_| count += 1));
    let md = report.to_markdown();
    let total = start.elapsed();

    // The other renderings of the same fold.
    let start = Instant::now();
    let html = report.to_html();
    let json = report.to_json().to_string();
    let render = start.elapsed();

    // The reader alone, to tell whose time it is.
    let start = Instant::now();
    let read_only = Reader::open(&path).map(|r| r.count()).unwrap_or(0);
    let read = start.elapsed();

    println!(
        "report: {count} lines ({:.0} MB) -> {} bytes of markdown in {:.3} s (reader alone {:.3} s, {read_only} lines; html {} bytes + json {} bytes in {:.1} ms more); peak RSS {} kB (after generating: {} kB)",
        size as f64 / 1e6,
        md.len(),
        total.as_secs_f64(),
        read.as_secs_f64(),
        html.len(),
        json.len(),
        render.as_secs_f64() * 1000.0,
        peak_rss_kb().map_or("?".to_string(), |k| k.to_string()),
        rss_before.map_or("?".to_string(), |k| k.to_string()),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
