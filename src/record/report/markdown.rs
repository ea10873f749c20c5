//! The report as Markdown, for a person reading a postmortem: a summary, failovers by cause, failed
//! requests, a table of providers and a section for each, and the timeline of breaker changes and
//! operator actions.

use std::fmt::{Result, Write as _};

use super::{IN_FLIGHT_CAP, ProviderStats, Report, ts, usd};

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
        self.write_summary(out)?;
        self.write_failovers(out)?;
        self.write_failed_requests(out)?;
        self.write_providers_table(out)?;
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
        writeln!(out, "| Cost | {} |", money(r.cost_usd))?;
        let failed = money(self.failed_cost_total());
        writeln!(out, "| Cost of failed attempts | {failed} |")?;
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
                writeln!(out, "| {} | {n} |", md(cause))?;
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
                money(p.cost_usd),
                money(p.failed_cost_usd)
            )?;
        }
        writeln!(out)
    }

    /// A provider's section: what it is, its numbers, then its errors, skips and transitions.
    fn write_provider(&self, out: &mut String, name: &str, p: &ProviderStats) -> Result {
        writeln!(out, "### {}", md(name))?;
        writeln!(out)?;
        if let Some(info) = self.header.providers.iter().find(|i| i.name == name) {
            writeln!(
                out,
                "Protocol {}, model {}.",
                md(info.protocol.as_str()),
                md(&info.model)
            )?;
            writeln!(out)?;
        }
        self.write_provider_facts(out, p)?;
        write_errors(out, p)?;
        write_skips(out, p)?;
        write_transitions(out, p)
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
            "- Cost: {}, of which {} on {} failed attempts.",
            money(p.cost_usd),
            money(p.failed_cost_usd),
            p.failed_usages
        )?;
        let at_end = p.state.map_or(String::new(), |s| {
            format!("; {} at the end", md(s.as_str()))
        });
        writeln!(
            out,
            "- Time open (open or forced open): {}{at_end}.",
            duration(self.open_ms(p)),
        )?;
        writeln!(out)
    }

    fn write_timeline(&self, out: &mut String) -> Result {
        writeln!(out, "## Timeline")?;
        writeln!(out)?;
        if self.timeline.is_empty() {
            return writeln!(out, "No breaker changes or operator actions.");
        }
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

fn write_errors(out: &mut String, p: &ProviderStats) -> Result {
    if p.errors.is_empty() {
        return Ok(());
    }
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

fn write_transitions(out: &mut String, p: &ProviderStats) -> Result {
    if p.transitions.is_empty() {
        return Ok(());
    }
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
        let dropped = p.transitions_dropped;
        writeln!(out, "\n_{dropped} more transitions not listed._")?;
    }
    writeln!(out)
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
