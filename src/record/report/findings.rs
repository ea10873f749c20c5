//! What the report concludes, computed once for every rendering (Markdown, JSON, HTML say the same
//! facts): the root cause (failures by provider and class, with their statuses and messages) kept
//! apart from its consequences (skips), the first failure, the impact window, how the latency of
//! each provider changed inside it, and the sentences of "What happened".

use chrono::{DateTime, Timelike, Utc};

use super::window::Latency;
use super::{ClassDetail, Report, TimelineEntry, millis_between};
use crate::event::{ErrorClass, SkipReason};

/// How many causes "What happened" names.
const CAUSES_NAMED: usize = 3;

/// The failures of one class on one provider.
pub(super) struct Cause<'a> {
    pub provider: &'a str,
    pub class: &'a str,
    pub detail: &'a ClassDetail,
}

/// First-event latency of one provider inside and outside the impact window.
pub(super) struct Degradation<'a> {
    pub provider: &'a str,
    pub inside: Quantiles,
    pub outside: Quantiles,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Quantiles {
    pub count: u64,
    pub p50: Option<u64>,
    pub p95: Option<u64>,
}

impl Quantiles {
    pub(super) fn of(l: &Latency) -> Quantiles {
        Quantiles {
            count: l.count(),
            p50: l.percentile(0.50),
            p95: l.percentile(0.95),
        }
    }
}

/// A timeline row as rendered: the folded entries with the impact window's ends merged in.
pub(super) struct Row<'a> {
    pub ts: DateTime<Utc>,
    pub kind: &'a str,
    pub provider: Option<&'a str>,
    pub what: String,
}

impl Report {
    /// Failures by provider and class, the most frequent first (then the earliest). A client's
    /// cancellation is no failure.
    pub(super) fn causes(&self) -> Vec<Cause<'_>> {
        let mut all: Vec<Cause<'_>> = self
            .providers
            .iter()
            .flat_map(|(provider, p)| {
                p.errors.iter().map(move |(class, detail)| Cause {
                    provider,
                    class,
                    detail,
                })
            })
            .filter(|c| c.class != ErrorClass::Cancelled.as_str())
            .collect();
        all.sort_by(|a, b| {
            b.detail
                .count()
                .cmp(&a.detail.count())
                .then(a.detail.first.cmp(&b.detail.first))
        });
        all
    }

    /// Attempts passed over (`breaker_open`, …): consequences of the failures, not causes.
    pub(super) fn consequences(&self) -> Vec<(&str, &str, u64)> {
        self.providers
            .iter()
            .flat_map(|(provider, p)| {
                p.skipped
                    .iter()
                    .map(move |(reason, n)| (provider.as_str(), reason.as_str(), *n))
            })
            .collect()
    }

    /// Latency inside and outside the window, for each provider with a first event inside it.
    pub(super) fn degradation(&self) -> Vec<Degradation<'_>> {
        self.providers
            .iter()
            .filter(|(_, p)| p.split.inside().count() > 0)
            .map(|(provider, p)| Degradation {
                provider,
                inside: Quantiles::of(p.split.inside()),
                outside: Quantiles::of(&p.split.outside()),
            })
            .collect()
    }

    /// Milliseconds from the recording's first event.
    pub(super) fn offset_ms(&self, ts: DateTime<Utc>) -> u64 {
        self.first_ts.map_or(0, |t0| millis_between(t0, ts))
    }

    /// `+m:ss` (`+h:mm:ss` past an hour) from the recording's first event.
    pub(super) fn offset(&self, ts: DateTime<Utc>) -> String {
        let s = self.offset_ms(ts) / 1000;
        if s >= 3600 {
            format!("+{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
        } else {
            format!("+{}:{:02}", s / 60, s % 60)
        }
    }

    /// `09:09:28.981 (+0:15)`.
    pub(super) fn when(&self, ts: DateTime<Utc>) -> String {
        format!("{} ({})", clock(ts), self.offset(ts))
    }

    /// How long before the first breaker opened the first failure came.
    pub(super) fn failure_lead_ms(&self) -> Option<u64> {
        let (f, (open, _)) = (self.first_failure.as_ref()?, self.first_open.as_ref()?);
        Some(millis_between(f.ts, *open))
    }

    /// The timeline with the impact window's start and end in their places.
    pub(super) fn timeline_rows(&self) -> Vec<Row<'_>> {
        let mut marks: Vec<Row<'_>> = Vec::new();
        if let Some(w) = self.window {
            let a = self.affected;
            let what = format!(
                "impact window opens: the first affected request starts ({} failed over, {} failed in all)",
                a.failed_over, a.failed
            );
            marks.push(row_at(w.start, "impact_start", what));
            let what = format!(
                "impact window closes: the last affected request ends ({} later)",
                duration(millis_between(w.start, w.end))
            );
            marks.push(row_at(w.end, "impact_end", what));
        }
        let mut rows: Vec<Row<'_>> = self.timeline.iter().map(Row::from).collect();
        for mark in marks {
            // After the entries at the same instant for the start, before them for the end.
            let at = if mark.kind == "impact_start" {
                rows.partition_point(|r| r.ts <= mark.ts)
            } else {
                rows.partition_point(|r| r.ts < mark.ts)
            };
            rows.insert(at, mark);
        }
        rows
    }

    /// "What happened", one sentence each, plain text (each rendering escapes it).
    pub(super) fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let causes = self.causes();
        for (i, c) in causes.iter().take(CAUSES_NAMED).enumerate() {
            let label = if i == 0 { "Root cause" } else { "Also" };
            out.push(format!("{label}: {}", cause_sentence(c)));
        }
        if causes.is_empty() {
            out.push("No attempt failed.".to_string());
        }
        if let Some(f) = &self.first_failure {
            out.push(self.first_failure_sentence(f));
        }
        out.push(self.window_sentence());
        for d in self.degradation() {
            out.push(degradation_sentence(&d));
        }
        let consequences = self.consequences();
        if !consequences.is_empty() {
            let list: Vec<String> = consequences
                .iter()
                .map(|(p, reason, n)| format!("{p} skipped {} ({reason})", times(*n)))
                .collect();
            out.push(format!("Consequences, not causes: {}.", list.join("; ")));
        }
        out
    }

    fn first_failure_sentence(&self, f: &super::FirstFailure) -> String {
        let status = f.status.map_or(String::new(), |s| format!(", HTTP {s}"));
        let opened = match (&self.first_open, self.failure_lead_ms()) {
            (Some((ts, p)), Some(lead)) => format!(
                "{} before the first breaker opened ({p}, {}, {})",
                duration(lead),
                clock(*ts),
                self.offset(*ts)
            ),
            _ => "no breaker opened".to_string(),
        };
        format!(
            "First failure: {} on {}, {}{status}: \"{}\"; {opened}.",
            self.when(f.ts),
            f.provider,
            f.class,
            f.message
        )
    }

    fn window_sentence(&self) -> String {
        let Some(w) = self.window else {
            return "Impact: no request failed or failed over.".to_string();
        };
        let a = self.affected;
        format!(
            "Impact window: {} → {}, {}: {} requests affected ({} failed over, {} failed).",
            self.when(w.start),
            self.when(w.end),
            duration(millis_between(w.start, w.end)),
            a.failed_over + a.failed,
            a.failed_over,
            a.failed
        )
    }
}

impl<'a> From<&'a TimelineEntry> for Row<'a> {
    fn from(e: &'a TimelineEntry) -> Row<'a> {
        Row {
            ts: e.ts,
            kind: e.kind,
            provider: e.provider.as_deref(),
            what: e.what.clone(),
        }
    }
}

fn row_at<'a>(ts: DateTime<Utc>, kind: &'a str, what: String) -> Row<'a> {
    Row {
        ts,
        kind,
        provider: None,
        what,
    }
}

/// `anthropic rate_limited, 15 failures (HTTP 429 ×15): "…" ×15`.
pub(super) fn cause_sentence(c: &Cause<'_>) -> String {
    let d = c.detail;
    let (messages, rest) = d.top_messages();
    let quoted: Vec<String> = messages
        .iter()
        .map(|(m, n)| format!("\"{m}\" ×{n}"))
        .collect();
    let rest = if rest > 0 {
        format!(" and {rest} other messages")
    } else {
        String::new()
    };
    format!(
        "{} {}, {} ({}): {}{rest}.",
        c.provider,
        c.class,
        plural(d.count(), "failure"),
        statuses(d),
        quoted.join(", ")
    )
}

/// `HTTP 429 ×15, no status ×2`.
pub(super) fn statuses(d: &ClassDetail) -> String {
    let parts: Vec<String> = d
        .statuses
        .iter()
        .map(|(s, n)| match s {
            Some(s) => format!("HTTP {s} ×{n}"),
            None => format!("no status ×{n}"),
        })
        .collect();
    parts.join(", ")
}

fn degradation_sentence(d: &Degradation<'_>) -> String {
    let (i, o) = (d.inside, d.outside);
    if o.count == 0 {
        format!(
            "Latency: {} first event p95 {} during the incident vs p50 {} (all its {} first events were in the window).",
            d.provider,
            latency(i.p95),
            latency(i.p50),
            i.count
        )
    } else {
        format!(
            "Latency: {} first event p95 {} during the incident vs p50 {} outside it (p50 {} inside; {} first events inside, {} outside).",
            d.provider,
            latency(i.p95),
            latency(o.p50),
            latency(i.p50),
            i.count,
            o.count
        )
    }
}

/// `1 failure`, `15 failures`.
pub(super) fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `once`, `207 times`.
pub(super) fn times(n: u64) -> String {
    if n == 1 {
        "once".to_string()
    } else {
        format!("{n} times")
    }
}

/// Whether a failover cause is a skip (a consequence) rather than a failure.
pub(super) fn is_skip(cause: &str) -> bool {
    SkipReason::ALL.iter().any(|r| r.as_str() == cause)
}

/// `09:09:28.981`.
pub(super) fn clock(ts: DateTime<Utc>) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ts.hour(),
        ts.minute(),
        ts.second(),
        ts.timestamp_subsec_millis().min(999)
    )
}

/// A latency for people: `310 ms`, `1.71 s`, `12.3 s`; `—` when there is none.
pub(super) fn latency(ms: Option<u64>) -> String {
    match ms {
        None => "—".to_string(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 10_000 => format!("{:.2} s", ms as f64 / 1000.0),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

/// `850 ms`, `12.345 s`, `2 m 03.456 s`, `1 h 02 m 03 s`.
pub(super) fn duration(ms: u64) -> String {
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
