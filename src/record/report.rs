//! The incident report: one streaming pass over a recording, folded into counters, per-provider
//! latency histograms and short, capped lists, so memory stays bounded however long the recording
//! is. Rendered as Markdown for a postmortem or as JSON for tools; both are deterministic (ordered
//! maps, fixed rounding) so the same recording always gives the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::SessionHeader;
use super::reader::{Reader, RecordError};
use crate::event::{BreakerState, Event, EventKind, Outcome};

/// The most entries kept in any list (transitions per provider, the timeline). Breaker changes and
/// operator actions are few in a sane session; the cap only guards against a pathological file.
pub const LIST_CAP: usize = 10_000;
/// How many unreadable lines are quoted (all of them are counted).
pub const ERROR_SAMPLES: usize = 5;
/// Requests tracked at once. In-flight requests are bounded by the engine's concurrency; a file
/// whose requests never finish must not grow the map without limit.
const IN_FLIGHT_CAP: usize = 100_000;
/// Distinct providers with their own section. Names come from the file's content, and each one
/// carries a histogram (~100 KB), so a hostile file must not be able to make thousands.
const PROVIDER_CAP: usize = 64;
/// Distinct keys in maps keyed by free-form strings (skip reasons, failover causes).
const KEY_CAP: usize = 64;
/// Longest free-form text kept (reasons, details, messages): a report quotes, it does not copy.
const TEXT_CAP: usize = 300;
/// Where the providers beyond `PROVIDER_CAP` and keys beyond `KEY_CAP` are pooled.
const OTHER: &str = "(other)";
/// Latency histogram range: 1 ms to an hour at 3 significant digits (exact below 2048 ms).
const LATENCY_MAX_MS: u64 = 3_600_000;

/// An incident report over one recording.
#[derive(Debug, Clone)]
pub struct Report {
    header: SessionHeader,
    events: u64,
    skipped_lines: u64,
    skipped_samples: Vec<String>,
    first_ts: Option<DateTime<Utc>>,
    last_ts: Option<DateTime<Utc>>,
    requests: Requests,
    failovers: BTreeMap<String, u64>,
    failed_by_class: BTreeMap<String, u64>,
    providers: BTreeMap<String, ProviderStats>,
    timeline: Vec<TimelineEntry>,
    timeline_dropped: u64,
    in_flight: HashMap<String, InFlight>,
}

#[derive(Debug, Clone, Default)]
struct Requests {
    started: u64,
    ok: u64,
    error: u64,
    /// Started while `IN_FLIGHT_CAP` requests were open: counted, not followed.
    untracked: u64,
    cost_usd: f64,
    /// Sum over ok requests that carry `primary_cost_usd` of `cost_usd - primary_cost_usd`.
    failover_cost_delta_usd: f64,
    failover_delta_requests: u64,
}

#[derive(Debug, Clone, Default)]
struct InFlight {
    primary: Option<String>,
    /// The first thing that went wrong on the primary: a failure class or a skip reason.
    primary_cause: Option<String>,
    /// The last `usage` of this request not yet followed by anything else: if the next event for
    /// the request is `attempt_failed` on the same provider, that usage was a failed attempt's.
    pending_usage: Option<(String, f64)>,
}

#[derive(Debug, Clone)]
struct ProviderStats {
    attempts: u64,
    answered: u64,
    errors: BTreeMap<String, ClassCount>,
    skipped: BTreeMap<String, u64>,
    latency: Option<Histogram<u64>>,
    tokens: Tokens,
    estimated_usages: u64,
    cost_usd: f64,
    failed_cost_usd: f64,
    failed_usages: u64,
    /// The last state a `breaker_changed` put it in (`None`: never seen one).
    state: Option<BreakerState>,
    open_since: Option<DateTime<Utc>>,
    open_ms: u64,
    transitions: Vec<Transition>,
    transitions_dropped: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct ClassCount {
    retryable: u64,
    not_retryable: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Tokens {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
}

#[derive(Debug, Clone)]
struct Transition {
    ts: DateTime<Utc>,
    from: BreakerState,
    to: BreakerState,
    reason: String,
}

#[derive(Debug, Clone)]
struct TimelineEntry {
    ts: DateTime<Utc>,
    /// `breaker_changed`, `operator_action` or `provider_flagged`.
    kind: &'static str,
    provider: Option<String>,
    /// One line for a person: `closed → open: 3 consecutive failures`, `trip`, …
    what: String,
}

impl ProviderStats {
    fn new() -> Self {
        ProviderStats {
            attempts: 0,
            answered: 0,
            errors: BTreeMap::new(),
            skipped: BTreeMap::new(),
            latency: None,
            tokens: Tokens::default(),
            estimated_usages: 0,
            cost_usd: 0.0,
            failed_cost_usd: 0.0,
            failed_usages: 0,
            state: None,
            open_since: None,
            open_ms: 0,
            transitions: Vec::new(),
            transitions_dropped: 0,
        }
    }

    fn percentile(&self, q: f64) -> Option<u64> {
        self.latency
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q))
    }

    fn latency_count(&self) -> u64 {
        self.latency.as_ref().map_or(0, |h| h.len())
    }
}

fn millis_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

fn clip(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(TEXT_CAP + 1)
        .collect();
    if one_line.chars().count() > TEXT_CAP {
        let mut cut: String = one_line.chars().take(TEXT_CAP).collect();
        cut.push('…');
        cut
    } else {
        one_line
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if map.len() < KEY_CAP {
        map.insert(clip(key), 1);
    } else {
        *map.entry(OTHER.to_string()).or_default() += 1;
    }
}

impl Report {
    /// Fold a recording's events (as the reader yields them: unreadable lines are `Err`, counted
    /// and a few quoted) into a report. One pass; memory bounded by the caps above.
    pub fn from_events(
        header: &SessionHeader,
        events: impl IntoIterator<Item = Result<Event, RecordError>>,
    ) -> Report {
        let mut report = Report {
            header: header.clone(),
            events: 0,
            skipped_lines: 0,
            skipped_samples: Vec::new(),
            first_ts: None,
            last_ts: None,
            requests: Requests::default(),
            failovers: BTreeMap::new(),
            failed_by_class: BTreeMap::new(),
            providers: BTreeMap::new(),
            timeline: Vec::new(),
            timeline_dropped: 0,
            in_flight: HashMap::new(),
        };
        // The header's providers get a section even when they saw no traffic.
        for p in &header.providers {
            report.provider(&p.name);
        }
        for item in events {
            match item {
                Ok(event) => report.add(event),
                Err(e) => {
                    report.skipped_lines += 1;
                    if report.skipped_samples.len() < ERROR_SAMPLES {
                        report.skipped_samples.push(clip(&e.to_string()));
                    }
                }
            }
        }
        report.finish();
        report
    }

    /// Read a whole recording into a report.
    pub fn from_reader(reader: Reader) -> Report {
        let header = reader.header().clone();
        Report::from_events(&header, reader)
    }

    fn provider(&mut self, name: &str) -> &mut ProviderStats {
        let key = if self.providers.contains_key(name) || self.providers.len() < PROVIDER_CAP {
            name
        } else {
            OTHER
        };
        self.providers
            .entry(key.to_string())
            .or_insert_with(ProviderStats::new)
    }

    fn push_timeline(&mut self, entry: TimelineEntry) {
        if self.timeline.len() < LIST_CAP {
            self.timeline.push(entry);
        } else {
            self.timeline_dropped += 1;
        }
    }

    fn add(&mut self, event: Event) {
        self.events += 1;
        let ts = event.ts;
        // Min and max rather than first and last: a recording is in order, but if it is not, the
        // range still covers every event.
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |t| t.max(ts)));

        match event.kind {
            EventKind::SessionStarted { .. } => {}
            EventKind::RequestStarted {
                request_id, chain, ..
            } => {
                self.requests.started += 1;
                if self.in_flight.len() < IN_FLIGHT_CAP || self.in_flight.contains_key(&request_id)
                {
                    self.in_flight.insert(
                        request_id,
                        InFlight {
                            primary: chain.into_iter().next(),
                            ..InFlight::default()
                        },
                    );
                } else {
                    self.requests.untracked += 1;
                }
            }
            EventKind::AttemptStarted {
                request_id,
                provider,
                ..
            } => {
                self.clear_pending(&request_id);
                self.provider(&provider).attempts += 1;
            }
            EventKind::AttemptFailed {
                request_id,
                provider,
                class,
                retryable,
                ..
            } => {
                let mut failed_cost = None;
                if let Some(req) = self.in_flight.get_mut(&request_id) {
                    if let Some((p, cost)) = req.pending_usage.take() {
                        if p == provider {
                            failed_cost = Some(cost);
                        }
                    }
                    if req.primary.as_deref() == Some(provider.as_str())
                        && req.primary_cause.is_none()
                    {
                        req.primary_cause = Some(class.as_str().to_string());
                    }
                }
                let stats = self.provider(&provider);
                let count = stats.errors.entry(class.as_str().to_string()).or_default();
                if retryable {
                    count.retryable += 1;
                } else {
                    count.not_retryable += 1;
                }
                if let Some(cost) = failed_cost {
                    stats.failed_cost_usd += cost;
                    stats.failed_usages += 1;
                }
            }
            EventKind::AttemptSkipped {
                request_id,
                provider,
                reason,
            } => {
                if let Some(req) = self.in_flight.get_mut(&request_id) {
                    req.pending_usage = None;
                    if req.primary.as_deref() == Some(provider.as_str())
                        && req.primary_cause.is_none()
                    {
                        req.primary_cause = Some(reason.to_string());
                    }
                }
                bump(&mut self.provider(&provider).skipped, reason.as_str());
            }
            EventKind::FirstEvent {
                request_id,
                provider,
                latency_ms,
                ..
            } => {
                self.clear_pending(&request_id);
                let stats = self.provider(&provider);
                if stats.latency.is_none() {
                    stats.latency = Histogram::new_with_bounds(1, LATENCY_MAX_MS, 3).ok();
                }
                if let Some(h) = stats.latency.as_mut() {
                    // Saturating: a latency beyond an hour is recorded as an hour, not dropped.
                    h.saturating_record(latency_ms);
                }
            }
            EventKind::TextDelta { request_id, .. } | EventKind::Rewind { request_id, .. } => {
                self.clear_pending(&request_id);
            }
            EventKind::Usage {
                request_id,
                provider,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                cost_usd,
                estimated,
                ..
            } => {
                let cost = if cost_usd.is_finite() { cost_usd } else { 0.0 };
                let stats = self.provider(&provider);
                stats.tokens.input = stats.tokens.input.saturating_add(input_tokens);
                stats.tokens.output = stats.tokens.output.saturating_add(output_tokens);
                stats.tokens.cache_read = stats.tokens.cache_read.saturating_add(cache_read_tokens);
                stats.tokens.cache_write =
                    stats.tokens.cache_write.saturating_add(cache_write_tokens);
                stats.cost_usd += cost;
                if estimated {
                    stats.estimated_usages += 1;
                }
                if let Some(req) = self.in_flight.get_mut(&request_id) {
                    req.pending_usage = Some((provider, cost));
                }
            }
            EventKind::RequestFinished {
                request_id,
                outcome,
                provider,
                class,
                cost_usd,
                primary_cost_usd,
                ..
            } => {
                let req = self.in_flight.remove(&request_id);
                if cost_usd.is_finite() {
                    self.requests.cost_usd += cost_usd;
                }
                match outcome {
                    Outcome::Ok => {
                        self.requests.ok += 1;
                        if let Some(p) = &provider {
                            self.provider(p).answered += 1;
                        }
                        if let (Some(req), Some(answered)) = (&req, &provider) {
                            if let Some(primary) = &req.primary {
                                if primary != answered {
                                    let cause = req.primary_cause.as_deref().unwrap_or("unknown");
                                    bump(&mut self.failovers, cause);
                                }
                            }
                        }
                        if let Some(primary_cost) = primary_cost_usd {
                            let delta = cost_usd - primary_cost;
                            if delta.is_finite() {
                                self.requests.failover_cost_delta_usd += delta;
                                self.requests.failover_delta_requests += 1;
                            }
                        }
                    }
                    Outcome::Error => {
                        self.requests.error += 1;
                        let class = class.map_or("unknown", |c| c.as_str());
                        bump(&mut self.failed_by_class, class);
                    }
                }
            }
            EventKind::BreakerChanged {
                provider,
                from,
                to,
                reason,
                ..
            } => {
                let first_ts = self.first_ts.unwrap_or(ts);
                let stats = self.provider(&provider);
                // The first change says what the state was before it: if it was already open, it
                // has been open since the recording began.
                if stats.state.is_none() && from.is_open() && stats.open_since.is_none() {
                    stats.open_since = Some(first_ts);
                }
                if to.is_open() {
                    if stats.open_since.is_none() {
                        stats.open_since = Some(ts);
                    }
                } else if let Some(since) = stats.open_since.take() {
                    stats.open_ms = stats.open_ms.saturating_add(millis_between(since, ts));
                }
                stats.state = Some(to);
                let transition = Transition {
                    ts,
                    from,
                    to,
                    reason: clip(&reason),
                };
                let what = format!(
                    "{} → {}: {}",
                    transition.from, transition.to, transition.reason
                );
                if stats.transitions.len() < LIST_CAP {
                    stats.transitions.push(transition);
                } else {
                    stats.transitions_dropped += 1;
                }
                self.push_timeline(TimelineEntry {
                    ts,
                    kind: "breaker_changed",
                    provider: Some(clip(&provider)),
                    what,
                });
            }
            EventKind::ProviderFlagged {
                provider,
                flag,
                reason,
            } => self.push_timeline(TimelineEntry {
                ts,
                kind: "provider_flagged",
                provider: Some(clip(&provider)),
                what: clip(&format!("{flag}: {reason}")),
            }),
            EventKind::OperatorAction {
                action,
                provider,
                detail,
            } => self.push_timeline(TimelineEntry {
                ts,
                kind: "operator_action",
                provider: provider.as_deref().map(clip),
                what: if detail.is_empty() {
                    action.to_string()
                } else {
                    clip(&format!("{action} ({detail})"))
                },
            }),
        }
    }

    fn clear_pending(&mut self, request_id: &str) {
        if let Some(req) = self.in_flight.get_mut(request_id) {
            req.pending_usage = None;
        }
    }

    /// Close the open spans at the recording's end.
    fn finish(&mut self) {
        let Some(end) = self.last_ts else { return };
        for stats in self.providers.values_mut() {
            if let Some(since) = stats.open_since.take() {
                stats.open_ms = stats.open_ms.saturating_add(millis_between(since, end));
            }
        }
    }

    fn duration_ms(&self) -> u64 {
        match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => millis_between(a, b),
            _ => 0,
        }
    }

    fn success_rate(&self) -> Option<f64> {
        let finished = self.requests.ok + self.requests.error;
        (finished > 0).then(|| self.requests.ok as f64 / finished as f64)
    }

    fn failover_total(&self) -> u64 {
        self.failovers.values().sum()
    }

    fn failed_cost_total(&self) -> f64 {
        self.providers.values().map(|p| p.failed_cost_usd).sum()
    }

    /// Requests still open at the end of the recording.
    fn in_flight_count(&self) -> u64 {
        self.in_flight.len() as u64
    }

    /// Lines that could not be read and were skipped.
    pub fn skipped_lines(&self) -> u64 {
        self.skipped_lines
    }

    /// The report as JSON. Keys are sorted (serde_json's map is ordered without
    /// `preserve_order`), money is rounded to a micro-dollar, so the output is byte-stable.
    pub fn to_json(&self) -> Value {
        let providers: serde_json::Map<String, Value> = self
            .providers
            .iter()
            .map(|(name, p)| {
                let errors: serde_json::Map<String, Value> = p
                    .errors
                    .iter()
                    .map(|(class, c)| {
                        (
                            class.clone(),
                            json!({"retryable": c.retryable, "not_retryable": c.not_retryable}),
                        )
                    })
                    .collect();
                let transitions: Vec<Value> = p
                    .transitions
                    .iter()
                    .map(
                        |t| json!({"ts": ts(t.ts), "from": t.from, "to": t.to, "reason": t.reason}),
                    )
                    .collect();
                (
                    name.clone(),
                    json!({
                        "attempts": p.attempts,
                        "answered": p.answered,
                        "errors": errors,
                        "skipped": p.skipped,
                        "open_ms": p.open_ms,
                        "state_at_end": p.state,
                        "transitions": transitions,
                        "transitions_dropped": p.transitions_dropped,
                        "first_event_latency_ms": {
                            "count": p.latency_count(),
                            "p50": p.percentile(0.50),
                            "p95": p.percentile(0.95),
                            "p99": p.percentile(0.99),
                        },
                        "tokens": {
                            "input": p.tokens.input,
                            "output": p.tokens.output,
                            "cache_read": p.tokens.cache_read,
                            "cache_write": p.tokens.cache_write,
                        },
                        "estimated_usages": p.estimated_usages,
                        "cost_usd": usd(p.cost_usd),
                        "failed_attempts_cost_usd": usd(p.failed_cost_usd),
                        "failed_attempts_with_usage": p.failed_usages,
                    }),
                )
            })
            .collect();
        let timeline: Vec<Value> = self
            .timeline
            .iter()
            .map(
                |e| json!({"ts": ts(e.ts), "type": e.kind, "provider": e.provider, "what": e.what}),
            )
            .collect();
        json!({
            "session": {
                "started_at": ts(self.header.started_at),
                "mode": self.header.mode,
                "breakerbox_version": self.header.breakerbox_version,
                "format_version": self.header.format_version,
                "redacted": self.header.redacted,
                "providers": self.header.providers,
            },
            "time_range": {
                "first_event": self.first_ts.map(ts),
                "last_event": self.last_ts.map(ts),
                "duration_ms": self.duration_ms(),
            },
            "events": self.events,
            "skipped_lines": {
                "count": self.skipped_lines,
                "first": self.skipped_samples,
            },
            "requests": {
                "started": self.requests.started,
                "ok": self.requests.ok,
                "error": self.requests.error,
                "in_flight_at_end": self.in_flight_count(),
                "untracked": self.requests.untracked,
                "success_rate": self.success_rate().map(|r| round(r, 1e6)),
                "failed_by_class": self.failed_by_class,
                "cost_usd": usd(self.requests.cost_usd),
            },
            "failovers": {
                "total": self.failover_total(),
                "by_cause": self.failovers,
            },
            "failover_cost_delta_usd": usd(self.requests.failover_cost_delta_usd),
            "failover_cost_delta_requests": self.requests.failover_delta_requests,
            "failed_attempts_cost_usd": usd(self.failed_cost_total()),
            "providers": providers,
            "timeline": timeline,
            "timeline_dropped": self.timeline_dropped,
        })
    }

    /// The report as Markdown, for a person reading a postmortem.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = self.write_markdown(&mut out);
        out
    }

    fn write_markdown(&self, out: &mut String) -> std::fmt::Result {
        let h = &self.header;
        writeln!(out, "# Incident report")?;
        writeln!(out)?;
        writeln!(
            out,
            "Session started {} ({} mode, breakerbox {}{}).",
            ts(h.started_at),
            md(&format!("{:?}", h.mode).to_lowercase()),
            md(&h.breakerbox_version),
            if h.redacted { ", content redacted" } else { "" }
        )?;
        writeln!(out)?;

        writeln!(out, "## Summary")?;
        writeln!(out)?;
        writeln!(out, "| | |")?;
        writeln!(out, "|---|---|")?;
        match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => writeln!(
                out,
                "| Time range | {} → {} ({}) |",
                ts(a),
                ts(b),
                duration(self.duration_ms())
            )?,
            _ => writeln!(out, "| Time range | no events |")?,
        }
        writeln!(out, "| Events | {} |", self.events)?;
        writeln!(out, "| Skipped lines | {} |", self.skipped_lines)?;
        let r = &self.requests;
        writeln!(
            out,
            "| Requests | {} started: {} ok, {} failed, {} in flight at the end |",
            r.started,
            r.ok,
            r.error,
            self.in_flight_count()
        )?;
        writeln!(
            out,
            "| Success rate | {} |",
            self.success_rate()
                .map_or("n/a".to_string(), |s| format!("{:.1} %", s * 100.0))
        )?;
        writeln!(out, "| Failovers | {} |", self.failover_total())?;
        writeln!(out, "| Cost | {} |", money(r.cost_usd))?;
        writeln!(
            out,
            "| Cost of failed attempts | {} |",
            money(self.failed_cost_total())
        )?;
        writeln!(
            out,
            "| Failover cost delta | {} over {} ok requests (paid − primary's price) |",
            signed_money(r.failover_cost_delta_usd),
            r.failover_delta_requests
        )?;
        writeln!(out)?;
        if r.untracked > 0 {
            writeln!(
                out,
                "_{} requests started while {IN_FLIGHT_CAP} were open were counted but not followed._",
                r.untracked
            )?;
            writeln!(out)?;
        }

        writeln!(out, "## Failovers by cause")?;
        writeln!(out)?;
        if self.failovers.is_empty() {
            writeln!(
                out,
                "No request was answered by a provider other than its primary."
            )?;
        } else {
            writeln!(
                out,
                "Requests answered by a provider other than their primary, by what happened on the primary first."
            )?;
            writeln!(out)?;
            writeln!(out, "| Cause | Requests |")?;
            writeln!(out, "|---|---:|")?;
            for (cause, n) in &self.failovers {
                writeln!(out, "| {} | {n} |", md(cause))?;
            }
        }
        writeln!(out)?;
        if !self.failed_by_class.is_empty() {
            writeln!(out, "## Failed requests")?;
            writeln!(out)?;
            writeln!(out, "| Class | Requests |")?;
            writeln!(out, "|---|---:|")?;
            for (class, n) in &self.failed_by_class {
                writeln!(out, "| {} | {n} |", md(class))?;
            }
            writeln!(out)?;
        }

        writeln!(out, "## Providers")?;
        writeln!(out)?;
        writeln!(
            out,
            "| Provider | Attempts | Answered | Errors | Time open | First event p50 | p95 | p99 | Cost | Failed-attempt cost |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for (name, p) in &self.providers {
            let errors: u64 = p
                .errors
                .values()
                .map(|c| c.retryable + c.not_retryable)
                .sum();
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                md(name),
                p.attempts,
                p.answered,
                errors,
                duration(p.open_ms),
                opt_ms(p.percentile(0.50)),
                opt_ms(p.percentile(0.95)),
                opt_ms(p.percentile(0.99)),
                money(p.cost_usd),
                money(p.failed_cost_usd)
            )?;
        }
        writeln!(out)?;

        for (name, p) in &self.providers {
            let info = h.providers.iter().find(|i| &i.name == name);
            writeln!(out, "### {}", md(name))?;
            writeln!(out)?;
            if let Some(info) = info {
                writeln!(
                    out,
                    "Protocol {}, model {}.",
                    md(info.protocol.as_str()),
                    md(&info.model)
                )?;
                writeln!(out)?;
            }
            writeln!(
                out,
                "- Attempts: {}, answered {} requests; first event measured {} times.",
                p.attempts,
                p.answered,
                p.latency_count()
            )?;
            writeln!(
                out,
                "- Tokens: {} in, {} out, {} cache read, {} cache write{}.",
                p.tokens.input,
                p.tokens.output,
                p.tokens.cache_read,
                p.tokens.cache_write,
                if p.estimated_usages > 0 {
                    format!(" ({} usages estimated)", p.estimated_usages)
                } else {
                    String::new()
                }
            )?;
            writeln!(
                out,
                "- Cost: {}, of which {} on {} failed attempts.",
                money(p.cost_usd),
                money(p.failed_cost_usd),
                p.failed_usages
            )?;
            writeln!(
                out,
                "- Time open (open or forced open): {}{}.",
                duration(p.open_ms),
                p.state.map_or(String::new(), |s| format!(
                    "; {} at the end",
                    md(s.as_str())
                ))
            )?;
            writeln!(out)?;
            if !p.errors.is_empty() {
                writeln!(out, "| Error class | Retryable | Not retryable |")?;
                writeln!(out, "|---|---:|---:|")?;
                for (class, c) in &p.errors {
                    writeln!(
                        out,
                        "| {} | {} | {} |",
                        md(class),
                        c.retryable,
                        c.not_retryable
                    )?;
                }
                writeln!(out)?;
            }
            if !p.skipped.is_empty() {
                writeln!(out, "| Skipped because | Times |")?;
                writeln!(out, "|---|---:|")?;
                for (reason, n) in &p.skipped {
                    writeln!(out, "| {} | {n} |", md(reason))?;
                }
                writeln!(out)?;
            }
            if !p.transitions.is_empty() {
                writeln!(out, "| Time | Breaker | Reason |")?;
                writeln!(out, "|---|---|---|")?;
                for t in &p.transitions {
                    writeln!(
                        out,
                        "| {} | {} → {} | {} |",
                        ts(t.ts),
                        md(t.from.as_str()),
                        md(t.to.as_str()),
                        md(&t.reason)
                    )?;
                }
                if p.transitions_dropped > 0 {
                    writeln!(
                        out,
                        "\n_{} more transitions not listed._",
                        p.transitions_dropped
                    )?;
                }
                writeln!(out)?;
            }
        }

        writeln!(out, "## Timeline")?;
        writeln!(out)?;
        if self.timeline.is_empty() {
            writeln!(out, "No breaker changes or operator actions.")?;
        } else {
            writeln!(out, "| Time | Provider | Event | What |")?;
            writeln!(out, "|---|---|---|---|")?;
            for e in &self.timeline {
                let kind = match e.kind {
                    "breaker_changed" => "breaker",
                    "operator_action" => "operator",
                    _ => "flagged",
                };
                writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    ts(e.ts),
                    e.provider.as_deref().map_or("—".to_string(), md),
                    kind,
                    md(&e.what)
                )?;
            }
            if self.timeline_dropped > 0 {
                writeln!(
                    out,
                    "\n_{} more entries not listed._",
                    self.timeline_dropped
                )?;
            }
        }
        if self.skipped_lines > 0 {
            writeln!(out)?;
            writeln!(out, "## Skipped lines")?;
            writeln!(out)?;
            writeln!(
                out,
                "{} lines could not be read and were left out{}",
                self.skipped_lines,
                if self.skipped_lines as usize > self.skipped_samples.len() {
                    "; the first ones:"
                } else {
                    ":"
                }
            )?;
            writeln!(out)?;
            for s in &self.skipped_samples {
                writeln!(out, "- {}", md(s))?;
            }
        }
        Ok(())
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn round(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

/// Dollars rounded to a micro-dollar: the sums of many small floats would otherwise print noise
/// like `0.30000000000000004` and make the JSON differ by platform-independent but ugly digits.
fn usd(x: f64) -> f64 {
    round(x, 1e6)
}

fn money(x: f64) -> String {
    format!("${:.6}", usd(x))
}

fn signed_money(x: f64) -> String {
    let x = usd(x);
    if x < 0.0 {
        format!("−${:.6}", -x)
    } else {
        format!("+${x:.6}")
    }
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or("—".to_string(), |v| format!("{v} ms"))
}

/// `850 ms`, `12.345 s`, `2 m 03.456 s`, `1 h 02 m 03 s`.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{:03} s", ms / 1000, ms % 1000)
    } else if ms < 3_600_000 {
        format!(
            "{} m {:02}.{:03} s",
            ms / 60_000,
            (ms / 1000) % 60,
            ms % 1000
        )
    } else {
        format!(
            "{} h {:02} m {:02} s",
            ms / 3_600_000,
            (ms / 60_000) % 60,
            (ms / 1000) % 60
        )
    }
}

/// Text from the recording inside a Markdown table cell: no pipes or newlines may break the table.
fn md(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}
