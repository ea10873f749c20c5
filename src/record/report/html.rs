//! The report as one self-contained HTML page: inline CSS and inline SVG, no scripts and nothing
//! fetched, so it opens anywhere and can be attached to a ticket. The charts (first-event latency
//! over time per provider, breaker states per provider, the impact window shaded on both) sit
//! beside the tables, which say the same facts as the Markdown. Every piece of text from the
//! recording is escaped: messages are the upstream's words.

use std::fmt::{Result, Write as _};

use super::findings::{clock, duration, is_skip, latency, statuses};
use super::markdown::{kind_label, unpriced_requests};
use super::series::Point;
use super::{IN_FLIGHT_CAP, ProviderStats, Report, ts, usd};
use crate::event::BreakerState;

const STYLE: &str = include_str!("report.css");

/// Chart geometry (SVG user units; the SVG scales to its column).
const CHART_W: f64 = 640.0;
const LAT_H: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const AXIS: f64 = 28.0;
const ROW_H: f64 = 26.0;
/// Empty buckets the latency line is drawn across.
const GAP_BUCKETS: usize = 4;
/// One colour per provider line, in order (the legend names them).
const PALETTE: [&str; 6] = [
    "#2563eb", "#d97706", "#059669", "#7c3aed", "#0891b2", "#db2777",
];

impl Report {
    /// The report as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        // Writing to a String cannot fail; the result is ignored for that reason.
        let _ = self.write_html(&mut out);
        out
    }

    fn write_html(&self, out: &mut String) -> Result {
        let h = &self.header;
        writeln!(out, "<!DOCTYPE html>")?;
        writeln!(out, "<html lang=\"en\"><head><meta charset=\"utf-8\">")?;
        writeln!(
            out,
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        )?;
        writeln!(
            out,
            "<title>Incident report — {}</title>",
            esc(&ts(h.started_at))
        )?;
        writeln!(out, "<style>{STYLE}</style></head><body><main>")?;
        writeln!(out, "<header><h1>Incident report</h1>")?;
        writeln!(
            out,
            "<p class=\"meta\">Session started {} · {} mode · breakerbox {}{}</p></header>",
            esc(&ts(h.started_at)),
            esc(h.mode.as_str()),
            esc(&h.breakerbox_version),
            if h.redacted {
                " · content redacted"
            } else {
                ""
            }
        )?;
        self.html_findings(out)?;
        writeln!(out, "<div class=\"layout\"><div class=\"tables\">")?;
        self.html_summary(out)?;
        self.html_failovers(out)?;
        self.html_latency_split(out)?;
        writeln!(out, "</div><aside class=\"charts\">")?;
        self.html_latency_chart(out)?;
        self.html_breaker_chart(out)?;
        writeln!(out, "</aside></div>")?;
        self.html_root_cause(out)?;
        self.html_providers(out)?;
        self.html_pools(out)?;
        self.html_timeline(out)?;
        self.html_skipped(out)?;
        writeln!(out, "</main></body></html>")
    }

    fn html_findings(&self, out: &mut String) -> Result {
        writeln!(out, "<section id=\"findings\"><h2>What happened</h2><ul>")?;
        for f in self.findings() {
            writeln!(out, "<li>{}</li>", esc(&f))?;
        }
        writeln!(out, "</ul></section>")
    }

    fn html_summary(&self, out: &mut String) -> Result {
        writeln!(
            out,
            "<section id=\"summary\"><h2>Summary</h2><table class=\"kv\"><tbody>"
        )?;
        let range = match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => {
                format!("{} → {} ({})", ts(a), ts(b), duration(self.duration_ms()))
            }
            _ => "no events".to_string(),
        };
        let r = &self.requests;
        let rate = self
            .success_rate()
            .map_or("n/a".to_string(), |s| format!("{:.1} %", s * 100.0));
        let rows = [
            ("Time range", range),
            ("Events", self.events.to_string()),
            ("Skipped lines", self.skipped_lines.to_string()),
            (
                "Requests",
                format!(
                    "{} started: {} ok, {} failed, {} in flight at the end",
                    r.started,
                    r.ok,
                    r.error,
                    self.in_flight_count()
                ),
            ),
            ("Success rate", rate),
            ("Failovers", self.failover_total().to_string()),
            ("Cost", r.cost().describe(money)),
            (
                "Cost of failed attempts",
                self.failed_cost_total().describe(money),
            ),
            (
                "Failover cost delta",
                format!(
                    "{} over {} ok requests (paid − primary's price){}",
                    signed_money(r.failover_cost_delta_usd),
                    r.failover_delta_requests,
                    unpriced_requests(r.unpriced)
                ),
            ),
        ];
        for (k, v) in rows {
            writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v))?;
        }
        writeln!(out, "</tbody></table>")?;
        if r.untracked > 0 {
            writeln!(
                out,
                "<p class=\"note\">{} requests started while {IN_FLIGHT_CAP} were open were counted but not followed.</p>",
                r.untracked
            )?;
        }
        writeln!(out, "</section>")
    }

    fn html_root_cause(&self, out: &mut String) -> Result {
        writeln!(out, "<section id=\"root-cause\"><h2>Root cause</h2>")?;
        let causes = self.causes();
        if causes.is_empty() {
            writeln!(out, "<p>No attempt failed.</p>")?;
        } else {
            writeln!(
                out,
                "<table><thead><tr><th>Provider</th><th>Class</th><th class=\"n\">Failures</th><th>HTTP status</th><th>First</th><th>Last</th><th>Messages (most frequent first)</th></tr></thead><tbody>"
            )?;
            for c in &causes {
                let d = c.detail;
                let (messages, rest) = d.top_messages();
                write!(
                    out,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td><ul class=\"msgs\">",
                    esc(c.provider),
                    esc(c.class),
                    d.count(),
                    esc(&statuses(d)),
                    esc(&d.first.map_or("—".to_string(), |t| self.when(t))),
                    esc(&d.last.map_or("—".to_string(), |t| self.when(t)))
                )?;
                for (m, n) in messages {
                    write!(out, "<li><b>{n} ×</b> <q>{}</q></li>", esc(m))?;
                }
                if rest > 0 {
                    write!(out, "<li><b>{rest} ×</b> other messages</li>")?;
                }
                writeln!(out, "</ul></td></tr>")?;
            }
            writeln!(out, "</tbody></table>")?;
        }
        let consequences = self.consequences();
        if !consequences.is_empty() {
            writeln!(
                out,
                "<h3>Consequences (attempts passed over, not failures)</h3>"
            )?;
            writeln!(
                out,
                "<table><thead><tr><th>Provider</th><th>Skipped because</th><th class=\"n\">Times</th></tr></thead><tbody>"
            )?;
            for (p, reason, n) in consequences {
                writeln!(
                    out,
                    "<tr><td>{}</td><td><code>{}</code></td><td class=\"n\">{n}</td></tr>",
                    esc(p),
                    esc(reason)
                )?;
            }
            writeln!(out, "</tbody></table>")?;
        }
        writeln!(out, "</section>")
    }

    fn html_failovers(&self, out: &mut String) -> Result {
        writeln!(out, "<section id=\"failovers\"><h2>Failovers by cause</h2>")?;
        if self.failovers.is_empty() {
            writeln!(
                out,
                "<p>No request was answered by a provider other than its primary.</p>"
            )?;
        } else {
            writeln!(
                out,
                "<p>Requests answered by a provider other than their primary, by what happened on the primary first.</p>"
            )?;
            writeln!(
                out,
                "<table><thead><tr><th>Cause</th><th class=\"n\">Requests</th></tr></thead><tbody>"
            )?;
            for (cause, n) in &self.failovers {
                let note = if is_skip(cause) {
                    " <span class=\"dim\">(consequence: skipped)</span>"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "<tr><td><code>{}</code>{note}</td><td class=\"n\">{n}</td></tr>",
                    esc(cause)
                )?;
            }
            writeln!(out, "</tbody></table>")?;
        }
        if !self.failed_by_class.is_empty() {
            writeln!(out, "<h3>Failed requests</h3>")?;
            writeln!(
                out,
                "<table><thead><tr><th>Class</th><th class=\"n\">Requests</th></tr></thead><tbody>"
            )?;
            for (class, n) in &self.failed_by_class {
                writeln!(
                    out,
                    "<tr><td><code>{}</code></td><td class=\"n\">{n}</td></tr>",
                    esc(class)
                )?;
            }
            writeln!(out, "</tbody></table>")?;
        }
        writeln!(out, "</section>")
    }

    fn html_latency_split(&self, out: &mut String) -> Result {
        let rows = self.degradation();
        if rows.is_empty() {
            return Ok(());
        }
        writeln!(
            out,
            "<section id=\"latency\"><h2>Latency during the incident</h2>"
        )?;
        writeln!(
            out,
            "<table><thead><tr><th rowspan=\"2\">Provider</th><th colspan=\"3\">Inside the impact window</th><th colspan=\"3\">Outside</th></tr><tr><th class=\"n\">First events</th><th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">First events</th><th class=\"n\">p50</th><th class=\"n\">p95</th></tr></thead><tbody>"
        )?;
        for d in rows {
            let (i, o) = (d.inside, d.outside);
            writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(d.provider),
                i.count,
                latency(i.p50),
                latency(i.p95),
                o.count,
                latency(o.p50),
                latency(o.p95)
            )?;
        }
        writeln!(out, "</tbody></table></section>")
    }

    fn html_providers(&self, out: &mut String) -> Result {
        writeln!(out, "<section id=\"providers\"><h2>Providers</h2>")?;
        writeln!(
            out,
            "<table><thead><tr><th>Provider</th><th class=\"n\">Attempts</th><th class=\"n\">Answered</th><th class=\"n\">Errors</th><th class=\"n\">Time open</th><th>At the end</th><th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">p99</th><th class=\"n\">Cost</th><th class=\"n\">Failed-attempt cost</th></tr></thead><tbody>"
        )?;
        for (name, p) in &self.providers {
            self.html_provider_row(out, name, p)?;
        }
        writeln!(out, "</tbody></table>")?;
        let throttled: Vec<String> = self
            .providers
            .iter()
            .filter_map(|(name, p)| Some(format!("{name} {}", self.throttling_line(p)?)))
            .collect();
        if !throttled.is_empty() {
            writeln!(
                out,
                "<p class=\"note\">Rate limits — {}.</p>",
                esc(&throttled.join("; "))
            )?;
        }
        let faults: Vec<String> = self
            .providers
            .iter()
            .filter_map(|(name, p)| {
                let (start, end) = (p.fault_at_start.as_ref()?, p.fault.as_ref()?);
                Some(format!("{name}: {start} at the start, {end} at the end"))
            })
            .collect();
        if !faults.is_empty() {
            writeln!(
                out,
                "<p class=\"note\">Simulated faults — {}.</p>",
                esc(&faults.join("; "))
            )?;
        }
        writeln!(out, "</section>")
    }

    /// The pools of equivalent providers, as the Markdown's `## Pools`.
    fn html_pools(&self, out: &mut String) -> Result {
        if self.pools.is_empty() {
            return Ok(());
        }
        writeln!(out, "<section id=\"pools\"><h2>Pools</h2>")?;
        writeln!(
            out,
            "<table><thead><tr><th>Pool</th><th>Strategy</th><th>Members (weight)</th><th class=\"n\">Attempts</th><th class=\"n\">Answered</th><th class=\"n\">Errors</th><th class=\"n\">Moved between members</th></tr></thead><tbody>"
        )?;
        for pool in &self.pools {
            let members: Vec<String> = pool
                .members
                .iter()
                .map(|(m, w)| format!("{m} ({w})"))
                .collect();
            let (attempts, answered, errors) = self.pool_totals(pool);
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{attempts}</td><td class=\"n\">{answered}</td><td class=\"n\">{errors}</td><td class=\"n\">{}</td></tr>",
                esc(&pool.name),
                pool.strategy.as_str(),
                esc(&members.join(", ")),
                pool.moved_within
            )?;
        }
        writeln!(out, "</tbody></table></section>")
    }

    fn html_provider_row(&self, out: &mut String, name: &str, p: &ProviderStats) -> Result {
        let state = p.state_at_end();
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td><span class=\"state {}\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(name),
            p.attempts,
            p.answered,
            p.error_count(),
            duration(self.open_ms(p)),
            state.as_str(),
            state.as_str(),
            latency(p.percentile(0.50)),
            latency(p.percentile(0.95)),
            latency(p.percentile(0.99)),
            p.cost().describe(money),
            p.failed_cost().describe(money)
        )
    }

    fn html_timeline(&self, out: &mut String) -> Result {
        writeln!(out, "<section id=\"timeline\"><h2>Timeline</h2>")?;
        let rows = self.timeline_rows();
        if rows.is_empty() {
            return writeln!(
                out,
                "<p>No breaker changes, faults, failures or operator actions.</p></section>"
            );
        }
        writeln!(
            out,
            "<table><thead><tr><th class=\"n\">Offset</th><th>Time</th><th>Provider</th><th>Event</th><th>What</th></tr></thead><tbody>"
        )?;
        for e in &rows {
            let kind = kind_label(e.kind);
            writeln!(
                out,
                "<tr class=\"k-{kind}\"><td class=\"n\">{}</td><td class=\"t\">{}</td><td>{}</td><td><span class=\"tag\">{kind}</span></td><td>{}</td></tr>",
                esc(&self.offset(e.ts)),
                esc(&clock(e.ts)),
                esc(e.provider.unwrap_or("—")),
                esc(&e.what)
            )?;
        }
        writeln!(out, "</tbody></table>")?;
        if self.timeline_dropped > 0 {
            writeln!(
                out,
                "<p class=\"note\">{} more entries not listed.</p>",
                self.timeline_dropped
            )?;
        }
        writeln!(out, "</section>")
    }

    fn html_skipped(&self, out: &mut String) -> Result {
        if self.skipped_lines == 0 {
            return Ok(());
        }
        writeln!(out, "<section id=\"skipped\"><h2>Skipped lines</h2>")?;
        writeln!(
            out,
            "<p>{} lines could not be read and were left out.</p><ul>",
            self.skipped_lines
        )?;
        for s in &self.skipped_samples {
            writeln!(out, "<li><code>{}</code></li>", esc(s))?;
        }
        writeln!(out, "</ul></section>")
    }
}

/// Drawing: the two charts.
impl Report {
    /// x for `offset_ms` in a chart `CHART_W` wide.
    fn x(&self, offset_ms: u64) -> f64 {
        let span = self.duration_ms().max(1) as f64;
        LEFT + (offset_ms as f64 / span).min(1.0) * (CHART_W - LEFT - RIGHT)
    }

    fn html_window_band(&self, out: &mut String, top: f64, height: f64) -> Result {
        let Some(w) = self.window else {
            return Ok(());
        };
        let (a, b) = (
            self.x(self.offset_ms(w.start)),
            self.x(self.offset_ms(w.end)),
        );
        writeln!(
            out,
            "<rect class=\"window\" x=\"{a:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{height:.1}\"><title>impact window {} → {}</title></rect>",
            (b - a).max(1.0),
            esc(&self.offset(w.start)),
            esc(&self.offset(w.end))
        )
    }

    fn html_time_axis(&self, out: &mut String, y: f64) -> Result {
        let span = self.duration_ms();
        let step = time_step(span);
        writeln!(
            out,
            "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>",
            CHART_W - RIGHT
        )?;
        let mut t = 0;
        while t <= span {
            let x = self.x(t);
            writeln!(
                out,
                "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/><text class=\"label\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                y + 4.0,
                y + 16.0,
                offset_label(t)
            )?;
            t += step;
        }
        Ok(())
    }

    fn html_latency_chart(&self, out: &mut String) -> Result {
        writeln!(
            out,
            "<figure id=\"latency-chart\"><figcaption>First-event latency over time <span class=\"dim\">(line: mean, dots: slowest, per {} bucket)</span></figcaption>",
            esc(&duration(self.series_width.0))
        )?;
        let height = LAT_H;
        let plot_bottom = height - AXIS;
        let top_ms = self
            .providers
            .values()
            .flat_map(|p| p.series.points().iter().map(|q| q.max_ms))
            .max()
            .unwrap_or(0)
            .clamp(1, super::LATENCY_MAX_MS);
        let step = nice_step(top_ms, 4);
        let top_ms = top_ms.div_ceil(step) * step;
        let y =
            |ms: u64| plot_bottom - (ms.min(top_ms) as f64 / top_ms as f64) * (plot_bottom - TOP);
        writeln!(
            out,
            "<svg viewBox=\"0 0 {CHART_W} {height}\" role=\"img\" aria-label=\"first-event latency over time per provider\">"
        )?;
        self.html_window_band(out, TOP, plot_bottom - TOP)?;
        let mut v = 0;
        while v <= top_ms {
            let yy = y(v);
            writeln!(
                out,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/><text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                CHART_W - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                esc(&latency(Some(v)))
            )?;
            v += step;
        }
        self.html_time_axis(out, plot_bottom)?;
        for (i, (name, p)) in self.providers.iter().enumerate() {
            self.html_series(out, name, p.series.points(), PALETTE[i % PALETTE.len()], &y)?;
        }
        writeln!(out, "</svg>")?;
        self.html_legend(out)?;
        writeln!(out, "</figure>")
    }

    fn html_series(
        &self,
        out: &mut String,
        name: &str,
        points: &[Point],
        colour: &str,
        y: &dyn Fn(u64) -> f64,
    ) -> Result {
        let width = self.series_width.0;
        let at = |i: usize| {
            self.x((i as u64 * width)
                .saturating_add(width / 2)
                .min(self.duration_ms()))
        };
        // The line goes on across a few empty buckets (sparse traffic) and stops at a longer
        // silence (a provider nobody sent to while its breaker was open).
        let mut path = String::new();
        let mut last: Option<usize> = None;
        for (i, q) in points.iter().enumerate().filter(|(_, q)| q.count > 0) {
            let op = match last {
                Some(l) if i - l <= GAP_BUCKETS => 'L',
                _ => 'M',
            };
            let _ = write!(path, "{op}{:.1} {:.1} ", at(i), y(q.mean_ms()));
            last = Some(i);
        }
        writeln!(
            out,
            "<g class=\"series\"><title>{}</title><path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\" stroke-linejoin=\"round\"/>",
            esc(name),
            path.trim_end()
        )?;
        for (i, q) in points.iter().enumerate().filter(|(_, q)| q.count > 0) {
            writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{colour}\" fill-opacity=\"0.55\"><title>{} {}: {} first events, mean {}, slowest {}</title></circle>",
                at(i),
                y(q.max_ms),
                esc(name),
                esc(&offset_label(i as u64 * width)),
                q.count,
                esc(&latency(Some(q.mean_ms()))),
                esc(&latency(Some(q.max_ms)))
            )?;
        }
        writeln!(out, "</g>")
    }

    fn html_legend(&self, out: &mut String) -> Result {
        write!(out, "<p class=\"legend\">")?;
        for (i, name) in self.providers.keys().enumerate() {
            write!(
                out,
                "<span><i style=\"background:{}\"></i>{}</span>",
                PALETTE[i % PALETTE.len()],
                esc(name)
            )?;
        }
        if self.window.is_some() {
            write!(out, "<span><i class=\"window\"></i>impact window</span>")?;
        }
        writeln!(out, "</p>")
    }

    fn html_breaker_chart(&self, out: &mut String) -> Result {
        writeln!(
            out,
            "<figure id=\"breaker-chart\"><figcaption>Breaker states over time</figcaption>"
        )?;
        let rows = self.providers.len().max(1) as f64;
        let height = TOP + rows * ROW_H + AXIS;
        writeln!(
            out,
            "<svg viewBox=\"0 0 {CHART_W} {height:.0}\" role=\"img\" aria-label=\"breaker state per provider over time\">"
        )?;
        for (i, (name, p)) in self.providers.iter().enumerate() {
            let top = TOP + i as f64 * ROW_H;
            writeln!(
                out,
                "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                LEFT - 6.0,
                top + ROW_H / 2.0 + 4.0,
                esc(&short(name, 9))
            )?;
            self.html_bands(out, p, top + 3.0, ROW_H - 6.0)?;
            self.html_marks(out, name, top + 3.0)?;
        }
        self.html_window_band(out, TOP, rows * ROW_H)?;
        self.html_time_axis(out, TOP + rows * ROW_H + 2.0)?;
        writeln!(out, "</svg>")?;
        write!(out, "<p class=\"legend\">")?;
        for s in [
            BreakerState::Closed,
            BreakerState::HalfOpen,
            BreakerState::Open,
            BreakerState::ForcedOpen,
            BreakerState::ForcedClosed,
        ] {
            write!(out, "<span><i class=\"st {0}\"></i>{0}</span>", s.as_str())?;
        }
        writeln!(
            out,
            "<span><b class=\"mk failure\">▼</b>first failure</span><span><b class=\"mk fault\">▼</b>fault change</span><span><b class=\"mk operator\">▼</b>operator action</span></p></figure>"
        )
    }

    /// One provider's breaker states as bands, each labelled with its state where it fits.
    fn html_bands(&self, out: &mut String, p: &ProviderStats, top: f64, h: f64) -> Result {
        let end = self.duration_ms();
        let mut state = p.state_at_start();
        let mut from = 0;
        let changes = p
            .transitions
            .iter()
            .map(|t| (self.offset_ms(t.ts).min(end), t.to))
            .chain(std::iter::once((end, p.state_at_end())));
        for (at, next) in changes {
            let (a, b) = (self.x(from), self.x(at.max(from)));
            if b > a || at == end {
                let w = (b - a).max(0.5);
                write!(
                    out,
                    "<rect class=\"st {}\" x=\"{a:.1}\" y=\"{top:.1}\" width=\"{w:.1}\" height=\"{h:.1}\"><title>{} {} → {}</title></rect>",
                    state.as_str(),
                    state.as_str(),
                    offset_label(from),
                    offset_label(at.max(from))
                )?;
                if w > 8.0 * state.as_str().len() as f64 {
                    writeln!(
                        out,
                        "<text class=\"band\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                        a + 4.0,
                        top + h / 2.0 + 4.0,
                        state.as_str()
                    )?;
                }
            }
            state = next;
            from = at.max(from);
        }
        Ok(())
    }
}

impl Report {
    /// Operator actions, fault changes and the first failure on a provider's row: a small
    /// triangle at the top of its band, named in its tooltip.
    fn html_marks(&self, out: &mut String, provider: &str, top: f64) -> Result {
        let marks = self.timeline.iter().filter(|e| {
            e.provider.as_deref() == Some(provider)
                && matches!(
                    e.kind,
                    "operator_action" | "fault_changed" | "first_failure" | "recovery_probe"
                )
        });
        for e in marks {
            let x = self.x(self.offset_ms(e.ts));
            writeln!(
                out,
                "<path class=\"mark {}\" d=\"M{:.1} {:.1} l5 -7 h-10 z\"><title>{} {}: {}</title></path>",
                kind_label(e.kind),
                x,
                top + 6.0,
                esc(&self.offset(e.ts)),
                kind_label(e.kind),
                esc(&e.what)
            )?;
        }
        Ok(())
    }
}

/// `+1:05` for an offset in milliseconds.
fn offset_label(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("+{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("+{}:{:02}", s / 60, s % 60)
    }
}

/// A step for the time axis that people count in (seconds, minutes, hours): about 6 ticks.
fn time_step(span_ms: u64) -> u64 {
    const STEPS_S: [u64; 16] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200,
    ];
    let want = span_ms / 6;
    STEPS_S
        .iter()
        .map(|s| s * 1000)
        .find(|&s| s >= want)
        .unwrap_or_else(|| want.div_ceil(86_400_000).max(1) * 86_400_000)
}

/// A round step (1, 2, 5 × 10^n) that cuts `span` into at most about `parts` pieces.
fn nice_step(span: u64, parts: u64) -> u64 {
    let raw = (span / parts.max(1)).max(1);
    let mut base = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = base.saturating_mul(m);
            if step >= raw {
                return step;
            }
        }
        if base > u64::MAX / 10 {
            return raw;
        }
        base *= 10;
    }
}

/// `name` cut to `n` characters (a chart's row label), with `…` when cut.
fn short(name: &str, n: usize) -> String {
    if name.chars().count() <= n {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(n - 1).collect();
        s.push('…');
        s
    }
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

/// Text for HTML, in an element or a quoted attribute.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
