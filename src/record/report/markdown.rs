//! The report as Markdown, for a person reading a postmortem: what happened (root cause, first
//! failure, impact window, latency), a summary, the root cause in detail and its consequences,
//! failovers by cause, failed requests, latency inside and outside the impact window, a table of
//! providers and a section for each, and the timeline.

use std::fmt::{Result, Write as _};

use super::findings::{clock, duration, is_skip, latency, statuses};
use super::{IN_FLIGHT_CAP, ProviderStats, Report, ts, usd};
use crate::event::facts::Spend;

impl Report {
    /// The report as Markdown, for a person reading a postmortem.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = self.write_markdown(&mut out);
        out
    }

    fn write_markdown(&self, out: &mut String) -> Result {
        self.write_title(out)?;
        self.write_findings(out)?;
        self.write_summary(out)?;
        self.write_root_cause(out)?;
        self.write_failovers(out)?;
        self.write_failed_requests(out)?;
        self.write_latency_split(out)?;
        self.write_providers_table(out)?;
        self.write_pools(out)?;
        for (name, p) in &self.providers {
            self.write_provider(out, name, p)?;
        }
        self.write_timeline(out)?;
        self.write_skipped_lines(out)
    }

    fn write_title(&self, out: &mut String) -> Result {
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
        writeln!(out)
    }

    fn write_findings(&self, out: &mut String) -> Result {
        writeln!(out, "## What happened")?;
        writeln!(out)?;
        for f in self.findings() {
            writeln!(out, "- {}", md(&f))?;
        }
        writeln!(out)
    }

    /// Each failure class with its statuses and messages; the skips apart, as consequences.
    fn write_root_cause(&self, out: &mut String) -> Result {
        writeln!(out, "## Root cause")?;
        writeln!(out)?;
        let causes = self.causes();
        if causes.is_empty() {
            writeln!(out, "No attempt failed.")?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "Failed attempts by provider and error class, the most frequent first."
            )?;
            writeln!(out)?;
            writeln!(
                out,
                "| Provider | Class | Failures | HTTP status | First | Last | Messages (most frequent first) |"
            )?;
            writeln!(out, "|---|---|---:|---|---|---|---|")?;
            for c in &causes {
                let d = c.detail;
                let (messages, rest) = d.top_messages();
                let mut quoted: Vec<String> = messages
                    .iter()
                    .map(|(m, n)| format!("{n} × \"{}\"", md(m)))
                    .collect();
                if rest > 0 {
                    quoted.push(format!("{rest} × other messages"));
                }
                writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    md(c.provider),
                    md(c.class),
                    d.count(),
                    statuses(d),
                    d.first.map_or("—".to_string(), |t| self.when(t)),
                    d.last.map_or("—".to_string(), |t| self.when(t)),
                    quoted.join("<br>")
                )?;
            }
            writeln!(out)?;
        }
        let consequences = self.consequences();
        if !consequences.is_empty() {
            writeln!(out, "Consequences (attempts passed over, not failures):")?;
            writeln!(out)?;
            writeln!(out, "| Provider | Skipped because | Times |")?;
            writeln!(out, "|---|---|---:|")?;
            for (p, reason, n) in consequences {
                writeln!(out, "| {} | {} | {n} |", md(p), md(reason))?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    fn write_latency_split(&self, out: &mut String) -> Result {
        let rows = self.degradation();
        if rows.is_empty() {
            return Ok(());
        }
        writeln!(out, "## Latency during the incident")?;
        writeln!(out)?;
        writeln!(
            out,
            "First-event latency inside the impact window and outside it."
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "| Provider | Inside: first events | p50 | p95 | Outside: first events | p50 | p95 |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
        for d in rows {
            let (i, o) = (d.inside, d.outside);
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(d.provider),
                i.count,
                latency(i.p50),
                latency(i.p95),
                o.count,
                latency(o.p50),
                latency(o.p95)
            )?;
        }
        writeln!(out)
    }

    fn write_summary(&self, out: &mut String) -> Result {
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
        let rate = self.success_rate();
        let rate = rate.map_or("n/a".to_string(), |s| format!("{:.1} %", s * 100.0));
        writeln!(out, "| Success rate | {rate} |")?;
        writeln!(out, "| Failovers | {} |", self.failover_total())?;
        writeln!(out, "| Cost | {} |", r.cost().describe(money))?;
        let failed = self.failed_cost_total().describe(money);
        writeln!(out, "| Cost of failed attempts | {failed} |")?;
        writeln!(
            out,
            "| Failover cost delta | {} over {} ok requests (paid − primary's price){} |",
            signed_money(r.failover_cost_delta_usd),
            r.failover_delta_requests,
            unpriced_requests(r.unpriced)
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
        Ok(())
    }

    fn write_failovers(&self, out: &mut String) -> Result {
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
                let cause = if is_skip(cause) {
                    format!("{} (consequence: skipped)", md(cause))
                } else {
                    md(cause)
                };
                writeln!(out, "| {cause} | {n} |")?;
            }
        }
        writeln!(out)
    }

    fn write_failed_requests(&self, out: &mut String) -> Result {
        if self.failed_by_class.is_empty() {
            return Ok(());
        }
        writeln!(out, "## Failed requests")?;
        writeln!(out)?;
        writeln!(out, "| Class | Requests |")?;
        writeln!(out, "|---|---:|")?;
        for (class, n) in &self.failed_by_class {
            writeln!(out, "| {} | {n} |", md(class))?;
        }
        writeln!(out)
    }

    fn write_providers_table(&self, out: &mut String) -> Result {
        writeln!(out, "## Providers")?;
        writeln!(out)?;
        writeln!(
            out,
            "| Provider | Attempts | Answered | Errors | Time open | First event p50 | p95 | p99 | Cost | Failed-attempt cost |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for (name, p) in &self.providers {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                md(name),
                p.attempts,
                p.answered,
                p.error_count(),
                duration(self.open_ms(p)),
                opt_ms(p.percentile(0.50)),
                opt_ms(p.percentile(0.95)),
                opt_ms(p.percentile(0.99)),
                p.cost().describe(money),
                p.failed_cost().describe(money)
            )?;
        }
        writeln!(out)
    }

    /// The pools of equivalent providers: each with its strategy, its members and their weights,
    /// their numbers together, and the requests that moved from one member to another.
    fn write_pools(&self, out: &mut String) -> Result {
        if self.pools.is_empty() {
            return Ok(());
        }
        writeln!(out, "## Pools")?;
        writeln!(out)?;
        writeln!(
            out,
            "| Pool | Strategy | Members (weight) | Attempts | Answered | Errors | Moved between members |"
        )?;
        writeln!(out, "|---|---|---|---:|---:|---:|---:|")?;
        for pool in &self.pools {
            let members: Vec<String> = pool
                .members
                .iter()
                .map(|(m, w)| format!("{} ({w})", md(m)))
                .collect();
            let (attempts, answered, errors) = self.pool_totals(pool);
            writeln!(
                out,
                "| {} | {} | {} | {attempts} | {answered} | {errors} | {} |",
                md(&pool.name),
                pool.strategy.as_str(),
                members.join(", "),
                pool.moved_within
            )?;
        }
        writeln!(out)
    }

    /// A provider's section: what it is, its numbers, then its errors, skips and transitions.
    fn write_provider(&self, out: &mut String, name: &str, p: &ProviderStats) -> Result {
        writeln!(out, "### {}", md(name))?;
        writeln!(out)?;
        if let Some(info) = self.header.providers.iter().find(|i| i.name == name) {
            let pool = self.pool_of(name).map_or(String::new(), |(pool, weight)| {
                format!(" Member of pool {} (weight {weight}).", md(&pool.name))
            });
            writeln!(
                out,
                "Protocol {}, model {}.{pool}",
                md(info.protocol.as_str()),
                md(&info.model)
            )?;
            writeln!(out)?;
        }
        self.write_provider_facts(out, p)?;
        write_errors(out, p)?;
        write_skips(out, p)?;
        self.write_transitions(out, p)
    }

    fn write_transitions(&self, out: &mut String, p: &ProviderStats) -> Result {
        if p.transitions.is_empty() {
            return Ok(());
        }
        writeln!(out, "| Offset | Time | Breaker | Reason |")?;
        writeln!(out, "|---:|---|---|---|")?;
        for t in &p.transitions {
            writeln!(
                out,
                "| {} | {} | {} → {} | {} |",
                self.offset(t.ts),
                clock(t.ts),
                md(t.from.as_str()),
                md(t.to.as_str()),
                md(&t.reason)
            )?;
        }
        if p.transitions_dropped > 0 {
            let dropped = p.transitions_dropped;
            writeln!(out, "\n_{dropped} more transitions not listed._")?;
        }
        writeln!(out)
    }

    fn write_provider_facts(&self, out: &mut String, p: &ProviderStats) -> Result {
        writeln!(
            out,
            "- Attempts: {}, answered {} requests; first event measured {} times.",
            p.attempts,
            p.answered,
            p.latency_count()
        )?;
        let t = &p.tokens;
        let estimated = if p.estimated_usages > 0 {
            format!(" ({} usages estimated)", p.estimated_usages)
        } else {
            String::new()
        };
        writeln!(
            out,
            "- Tokens: {} in, {} out, {} cache read, {} cache write{estimated}.",
            t.input, t.output, t.cache_read, t.cache_write,
        )?;
        writeln!(
            out,
            "- Cost: {}, of which {} on {} failed attempts{}.",
            p.cost().describe(money),
            p.failed_cost().describe(money),
            p.failed_usages,
            unpriced_usages(p.unpriced_usages)
        )?;
        if p.probes > 0 {
            writeln!(
                out,
                "- Recovery probes: {} sent while its breaker was open, {} answered, {} (in the cost).",
                p.probes,
                p.probes_answered,
                Spend {
                    usd: p.probe_cost_usd,
                    unpriced: p.probe_unpriced
                }
                .describe(money)
            )?;
        }
        writeln!(
            out,
            "- Time open (open or forced open): {}; {} at the end.",
            duration(self.open_ms(p)),
            md(p.state_at_end().as_str())
        )?;
        if let Some(line) = self.throttling_line(p) {
            let mut line = line;
            if let Some(first) = line.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            writeln!(out, "- {}.", md(&line))?;
        }
        if let (Some(start), Some(end)) = (&p.fault_at_start, &p.fault) {
            writeln!(
                out,
                "- Simulated fault: {} at the start, {} at the end.",
                md(start),
                md(end)
            )?;
        }
        writeln!(out)
    }

    fn write_timeline(&self, out: &mut String) -> Result {
        writeln!(out, "## Timeline")?;
        writeln!(out)?;
        let rows = self.timeline_rows();
        if rows.is_empty() {
            return writeln!(
                out,
                "No breaker changes, faults, failures or operator actions."
            );
        }
        writeln!(out, "| Offset | Time | Provider | Event | What |")?;
        writeln!(out, "|---:|---|---|---|---|")?;
        for e in &rows {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                self.offset(e.ts),
                clock(e.ts),
                e.provider.map_or("—".to_string(), md),
                kind_label(e.kind),
                md(&e.what)
            )?;
        }
        if self.timeline_dropped > 0 {
            let dropped = self.timeline_dropped;
            writeln!(out, "\n_{dropped} more entries not listed._")?;
        }
        Ok(())
    }

    fn write_skipped_lines(&self, out: &mut String) -> Result {
        if self.skipped_lines == 0 {
            return Ok(());
        }
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
        Ok(())
    }
}

/// The timeline's word for an entry's type.
pub(super) fn kind_label(kind: &str) -> &'static str {
    match kind {
        "breaker_changed" => "breaker",
        "operator_action" => "operator",
        "fault_changed" => "fault",
        "recovery_probe" => "probe",
        "throttle_changed" => "throttle",
        "first_failure" => "failure",
        "impact_start" | "impact_end" => "impact",
        _ => "flagged",
    }
}

fn write_errors(out: &mut String, p: &ProviderStats) -> Result {
    if p.errors.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "| Error class | Retryable | Not retryable | HTTP status |"
    )?;
    writeln!(out, "|---|---:|---:|---|")?;
    for (class, c) in &p.errors {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            md(class),
            c.retryable,
            c.not_retryable,
            statuses(c)
        )?;
    }
    writeln!(out)
}

fn write_skips(out: &mut String, p: &ProviderStats) -> Result {
    if p.skipped.is_empty() {
        return Ok(());
    }
    writeln!(out, "| Skipped because | Times |")?;
    writeln!(out, "|---|---:|")?;
    for (reason, n) in &p.skipped {
        writeln!(out, "| {} | {n} |", md(reason))?;
    }
    writeln!(out)
}

fn money(x: f64) -> String {
    format!("${:.6}", usd(x))
}

/// `; 3 usages of a model without a price (cost unknown)`, or nothing when every usage was priced.
pub(super) fn unpriced_usages(n: u64) -> String {
    match n {
        0 => String::new(),
        1 => "; 1 usage of a model without a price (cost unknown)".to_string(),
        n => format!("; {n} usages of a model without a price (cost unknown)"),
    }
}

/// `; 2 requests with unpriced usage left out`, or nothing when every request was priced.
pub(super) fn unpriced_requests(n: u64) -> String {
    match n {
        0 => String::new(),
        1 => "; 1 request with unpriced usage left out".to_string(),
        n => format!("; {n} requests with unpriced usage left out"),
    }
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

/// Text from the recording inside a Markdown table cell: no pipes or newlines may break the table.
fn md(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}
