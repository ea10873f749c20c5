//! The detail view (Enter on a row): everything kept about one request, provider, error class or
//! event-log line, wrapped to the width and scrolled (`Overlay::Detail`). The same rows, unwrapped,
//! are what `y` copies ([`copy_text`]).

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::providers::{next_text, retry_mark};
use super::{Paint, popup, text};
use crate::console::dashboard::{
    AttemptState, AttemptView, BREAKER_HISTORY_KEPT, Dashboard, ERRORS_KEPT, ErrorDetail,
    MemberLink, ProviderView, REQUESTS_KEPT, RequestView,
};
use crate::console::theme::{Theme, state_word};
use crate::console::ui::DetailTarget;
use crate::event::facts::Spend;
use crate::event::{BreakerState, ErrorClass, Outcome};

/// Labels are padded to the longest of a detail's, within these bounds (a longer one pushes its
/// value right).
const LABEL_WIDTH: usize = 14;
const LABEL_WIDTH_MAX: usize = 30;

/// What a row means, for its colour (every row also says it in words).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tone {
    Plain,
    Muted,
    Good,
    Failed,
    Error { retryable: bool },
    State(BreakerState),
    Throttled,
}

/// One row of a detail, before wrapping.
#[derive(Debug, Clone, PartialEq)]
enum Row {
    Heading(String),
    /// `label  value`, the value wrapped under itself.
    Field(String, String, Tone),
    /// Free text, wrapped, indented by this many columns.
    Text(String, usize, Tone),
    Blank,
}

/// A detail: its title and rows.
struct Detail {
    title: String,
    rows: Vec<Row>,
}

impl Detail {
    /// The column values start at.
    fn label_width(&self) -> usize {
        let widest = self.rows.iter().filter_map(|row| match row {
            Row::Field(label, ..) => Some(text::width(label)),
            _ => None,
        });
        widest
            .max()
            .unwrap_or(0)
            .clamp(LABEL_WIDTH, LABEL_WIDTH_MAX)
    }

    fn new(title: String) -> Self {
        Detail {
            title,
            rows: Vec::new(),
        }
    }

    fn heading(&mut self, text: impl Into<String>) {
        if !self.rows.is_empty() {
            self.rows.push(Row::Blank);
        }
        self.rows.push(Row::Heading(text.into()));
    }

    fn field(&mut self, label: &str, value: impl Into<String>) {
        self.rows
            .push(Row::Field(label.to_string(), value.into(), Tone::Plain));
    }

    fn toned(&mut self, label: &str, value: impl Into<String>, tone: Tone) {
        self.rows
            .push(Row::Field(label.to_string(), value.into(), tone));
    }

    fn text(&mut self, text: impl Into<String>, indent: usize, tone: Tone) {
        self.rows.push(Row::Text(text.into(), indent, tone));
    }
}

/// The detail's text as `y` copies it: the title, then a line per row, unwrapped.
pub fn copy_text(dash: &Dashboard, target: &DetailTarget) -> String {
    let detail = build(dash, target);
    let mut out = detail.title.trim().to_string();
    out.push('\n');
    let label_width = detail.label_width();
    for row in &detail.rows {
        match row {
            Row::Heading(h) => out.push_str(h),
            Row::Field(label, value, _) => {
                out.push_str(&format!("{label:<label_width$}  {value}"));
            }
            Row::Text(t, indent, _) => {
                out.push_str(&" ".repeat(*indent));
                out.push_str(t);
            }
            Row::Blank => {}
        }
        out.push('\n');
    }
    out
}

/// The box the detail is drawn in: the whole screen but a margin, so it reads as a view over
/// the panels.
fn boxed(area: Rect) -> Rect {
    let margin = Margin::new(u16::from(area.width > 100) * 2, u16::from(area.height > 30));
    area.inner(margin)
}

/// The farthest the detail scrolls on a screen of `area`: its wrapped lines less a page.
pub fn max_scroll(dash: &Dashboard, target: &DetailTarget, area: Rect) -> usize {
    let inner = boxed(area).inner(Margin::new(2, 1));
    let lines = wrapped(
        &build(dash, target),
        usize::from(inner.width),
        &Theme::new(false),
    );
    lines.len().saturating_sub(usize::from(inner.height))
}

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, target: &DetailTarget, scroll: usize) {
    let theme = &paint.theme;
    let detail = build(paint.view.dash, target);
    let outer = boxed(area);
    let width = usize::from(outer.width.saturating_sub(4));
    let height = usize::from(outer.height.saturating_sub(2));
    let lines = wrapped(&detail, width, theme);
    let top = scroll.min(lines.len().saturating_sub(height));
    let keys = paint.view.keys;
    let shown = format!(
        " {}–{} of {} · {} back · {} copy ",
        (top + 1).min(lines.len()),
        (top + height).min(lines.len()),
        lines.len(),
        "Esc",
        keys.describe(crate::console::keys::Action::Copy),
    );
    let block = popup::block(detail.title, paint)
        .title_bottom(Line::styled(shown, theme.muted).right_aligned());
    let inner = popup::open(frame, outer, block);
    let body = inner.inner(Margin::new(1, 0));
    text::draw_lines(frame, body, lines.into_iter().skip(top).take(height));
}

/// The rows wrapped to `width` columns.
fn wrapped(detail: &Detail, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let label_column = detail.label_width();
    for row in &detail.rows {
        match row {
            Row::Heading(h) => {
                for piece in text::wrap(h, width) {
                    lines.push(Line::styled(piece, theme.title));
                }
            }
            Row::Field(label, value, tone) => {
                let label_width = text::width(label).max(label_column);
                let room = width.saturating_sub(label_width + 2).max(10);
                let style = style(*tone, theme);
                for (i, piece) in text::wrap(value, room).into_iter().enumerate() {
                    let gutter = if i == 0 {
                        format!("{label:<label_width$}  ")
                    } else {
                        " ".repeat(label_width + 2)
                    };
                    lines.push(Line::from(vec![
                        Span::styled(gutter, theme.muted),
                        Span::styled(piece, style),
                    ]));
                }
            }
            Row::Text(t, indent, tone) => {
                let room = width.saturating_sub(*indent).max(10);
                for piece in text::wrap(t, room) {
                    lines.push(Line::from(vec![
                        Span::raw(" ".repeat(*indent)),
                        Span::styled(piece, style(*tone, theme)),
                    ]));
                }
            }
            Row::Blank => lines.push(Line::default()),
        }
    }
    lines
}

fn style(tone: Tone, theme: &Theme) -> Style {
    match tone {
        Tone::Plain => Style::default(),
        Tone::Muted => theme.muted,
        Tone::Good => theme.ok,
        Tone::Failed => theme.failed,
        Tone::Error { retryable } => theme.error(retryable),
        Tone::State(state) => theme.state(state),
        Tone::Throttled => theme.throttled,
    }
}

fn build(dash: &Dashboard, target: &DetailTarget) -> Detail {
    match target {
        DetailTarget::Request(id) => request(dash, id),
        DetailTarget::Provider(name) => provider(dash, name),
        DetailTarget::ErrorClass(class) => error_class(dash, *class),
        DetailTarget::Log(seq) => log_line(dash, *seq),
    }
}

fn request(dash: &Dashboard, id: &str) -> Detail {
    let mut d = Detail::new(format!(" request {} ", text::fit(id, 60)));
    let Some(r) = dash.request(id) else {
        d.text(
            format!(
                "{id} is no longer kept: the console keeps the newest {REQUESTS_KEPT} requests."
            ),
            0,
            Tone::Muted,
        );
        return d;
    };
    request_summary(&mut d, r);
    d.heading(format!("Attempts ({})", r.attempts.len()));
    for a in &r.attempts {
        attempt(&mut d, a);
    }
    if !r.rewinds.is_empty() {
        d.heading(format!("Rewinds ({})", r.rewinds.len()));
        for w in &r.rewinds {
            d.text(
                format!(
                    "⟲ {}: {} characters withdrawn ({})",
                    w.provider, w.discarded_chars, w.reason
                ),
                2,
                Tone::Plain,
            );
        }
    }
    let chars = r.text.chars().count();
    let cut = if r.text_truncated { ", cut" } else { "" };
    d.heading(format!("Reply ({chars} characters{cut})"));
    if r.text.is_empty() {
        d.text("(no text yet)", 2, Tone::Muted);
    }
    for paragraph in r.text.split('\n') {
        d.text(paragraph, 2, Tone::Plain);
    }
    d
}

fn request_summary(d: &mut Detail, r: &RequestView) {
    d.field(
        "started",
        format!("{} ({:?})", time(r.started_at), r.source).to_lowercase(),
    );
    d.field("chain", r.chain.join(" → "));
    if let Some(name) = &r.chain_name {
        d.field("asked for", format!("chain {name} (x-breakerbox-chain)"));
    }
    if r.failover_off {
        d.field(
            "failover",
            "off (x-breakerbox-failover): its first target only",
        );
    }
    if let Some(prompt) = &r.prompt {
        d.field("prompt", prompt.clone());
    }
    let took = r.total_ms.map(|ms| format!(" in {}", text::millis(ms)));
    let took = took.unwrap_or_default();
    let (outcome, tone) = match r.outcome {
        None => (
            format!(
                "in flight{}",
                r.provider
                    .as_ref()
                    .map(|p| format!(" at {p}"))
                    .unwrap_or_default()
            ),
            Tone::Muted,
        ),
        Some(Outcome::Ok) => {
            let by = r.provider.as_deref().unwrap_or("?");
            let fell = if r.chain.first().map(String::as_str) != Some(by) {
                " (failed over)"
            } else {
                ""
            };
            (format!("answered by {by}{fell}{took}"), Tone::Good)
        }
        Some(Outcome::Error) => {
            let class = r.class.map_or("error", |c| c.as_str());
            (format!("failed{took}: {class}"), Tone::Failed)
        }
    };
    d.toned("outcome", outcome, tone);
    if let Some(message) = &r.message {
        d.toned("message", message.clone(), Tone::Failed);
    }
    if let Some(stop) = &r.stop_reason {
        d.field("stop reason", stop.clone());
    }
    d.field("cost", r.cost().describe(text::usd));
}

fn attempt(d: &mut Detail, a: &AttemptView) {
    let x = &a.detail;
    let head = match &a.state {
        AttemptState::Skipped { reason } => {
            d.text(format!("skipped {}: {reason}", a.provider), 2, Tone::Muted);
            return;
        }
        AttemptState::Waiting => "waiting for its first event".to_string(),
        AttemptState::Streaming { .. } => "streaming / answered".to_string(),
        AttemptState::Failed { .. } => "failed".to_string(),
    };
    let model = if a.model.is_empty() {
        String::new()
    } else {
        format!(" ({})", a.model)
    };
    let tone = match a.state {
        AttemptState::Failed { .. } => Tone::Failed,
        _ => Tone::Plain,
    };
    d.text(
        format!("#{} {}{model}: {head}", a.number, a.provider),
        2,
        tone,
    );
    let mut fields: Vec<(&str, String)> = Vec::new();
    if let Some(at) = x.started_at {
        fields.push(("  started", time(at)));
    }
    if let Some(state) = x.breaker {
        fields.push((
            "  breaker",
            format!("{} when it started", state_word(state)),
        ));
    }
    if let Some(ms) = x.first_event_ms {
        fields.push(("  first event", text::millis(ms)));
    }
    for (label, value) in fields {
        d.field(label, value);
    }
    if let AttemptState::Failed {
        class,
        phase,
        retryable,
        message,
    } = &a.state
    {
        let error = Tone::Error {
            retryable: *retryable,
        };
        d.toned(
            "  class",
            format!(
                "{} {class} in {phase} ({})",
                retry_mark(*retryable),
                retryable_word(*retryable)
            ),
            error,
        );
        d.field(
            "  status",
            x.status
                .map_or("no HTTP status".into(), |s| format!("HTTP {s}")),
        );
        if let Some(ms) = x.retry_after_ms {
            d.field("  retry after", text::millis(ms));
        }
        if let Some(ms) = x.elapsed_ms {
            d.field("  elapsed", text::millis(ms));
        }
        d.toned("  message", message.clone(), Tone::Failed);
    }
    if let Some(t) = x.tokens {
        let estimated = if x.tokens_estimated {
            " (estimated)"
        } else {
            ""
        };
        d.field(
            "  tokens",
            format!(
                "{} in, {} out, {} cache read, {} cache write{estimated}",
                t.input, t.output, t.cache_read, t.cache_write
            ),
        );
        let cost = if x.unpriced {
            format!(
                "cost unknown: {} has no price (set [pricing.\"{}\"] in the config)",
                a.model, a.model
            )
        } else {
            text::usd(x.cost_usd)
        };
        d.field("  cost", cost);
    }
}

fn retryable_word(retryable: bool) -> &'static str {
    if retryable {
        "retryable: fails over"
    } else {
        "not retryable: fails everywhere"
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%H:%M:%S%.3f").to_string()
}

fn provider(dash: &Dashboard, name: &str) -> Detail {
    let mut d = Detail::new(format!(" provider {} ", text::fit(name, 60)));
    let Some(p) = dash.provider(name) else {
        d.text(
            format!("{name} is not among the providers."),
            0,
            Tone::Muted,
        );
        return d;
    };
    provider_summary(&mut d, dash, p);
    fleet_members(&mut d, dash, name);
    rate_limits(&mut d, dash, p);
    d.heading("Settings");
    if let Some(n) = p.threshold {
        d.field(
            "threshold",
            format!(
                "opens after {} in a row",
                text::plural(u64::from(n), "failure", "failures")
            ),
        );
    }
    if let Some(classes) = dash.breaker_counts() {
        let names: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
        d.field("counted", names.join(", "));
    }
    let ours = format!("providers.{name}.");
    let shared = dash
        .settings
        .iter()
        .filter(|(k, _)| !k.starts_with("providers.") || k.starts_with(&ours));
    let mut any = p.threshold.is_some();
    for (k, v) in shared {
        d.field(k, v.clone());
        any = true;
    }
    if !any {
        d.text("the session did not say", 2, Tone::Muted);
    }
    breaker_history(&mut d, p);
    d.heading(format!(
        "Last errors (newest first; the last {ERRORS_KEPT} are kept)"
    ));
    if p.recent_errors.is_empty() {
        d.text("none", 2, Tone::Muted);
    }
    for e in p.recent_errors.iter().rev() {
        error_row(&mut d, e, false);
    }
    d
}

/// Over a fleet, each gateway's part: its own breaker (the row shows the most severe), how close
/// it is to tripping, its traffic; or that it is down, and why.
fn fleet_members(d: &mut Detail, dash: &Dashboard, name: &str) {
    let Some(fleet) = &dash.gateways else {
        return;
    };
    d.heading(format!(
        "Gateways ({} of {} up; the row shows the most severe breaker)",
        fleet.up(),
        fleet.members.len()
    ));
    for m in &fleet.members {
        let label = text::fit(&m.name, 30);
        let down = match &m.link {
            MemberLink::Down { why, .. } => Some(format!("down ({why}); as last heard: ")),
            MemberLink::Connecting => Some("connecting; ".to_string()),
            MemberLink::Up => None,
        };
        let Some(p) = m.dash.provider(name) else {
            let said = down.unwrap_or_default();
            d.toned(&label, format!("{said}does not know {name}"), Tone::Muted);
            continue;
        };
        // The fleet's clock: a quiet member's own stops at its last event.
        let now = dash.now;
        let mut parts = vec![state_word(p.breaker).to_string()];
        if let Some(next) = next_text(p, now) {
            parts.push(next.trim().to_string());
        }
        let fails = match p.threshold {
            Some(t) => format!("{} of {t} fails", p.consecutive_failures),
            None => format!("{} fails in a row", p.consecutive_failures),
        };
        parts.push(fails);
        if let Some(ok) = p.success_rate() {
            parts.push(format!("ok {}", text::percent(ok)));
        }
        if let Some(ms) = p.latency_ms(0.5) {
            parts.push(format!("p50 {}", text::millis(ms)));
        }
        if let Some(now) = now {
            parts.push(format!("{:.1}/s", p.rate_per_sec(now)));
        }
        parts.push(p.cost().describe(text::usd));
        if p.breaker != BreakerState::Closed && !p.breaker_reason.is_empty() {
            parts.push(p.breaker_reason.clone());
        }
        let tone = if down.is_some() {
            Tone::Muted
        } else {
            Tone::State(p.breaker)
        };
        let value = format!("{}{}", down.unwrap_or_default(), parts.join(" · "));
        d.toned(&label, value, tone);
    }
}

/// `7 sent, 1 answered, $0.000042 · probe 7 answered at 12:00:31` (or out now, or the next due).
fn recovery_probes(p: &ProviderView, now: Option<DateTime<Utc>>) -> String {
    let r = &p.recovery;
    let spent = Spend {
        usd: r.cost_usd,
        unpriced: r.unpriced,
    };
    let mut s = format!(
        "{} sent, {} answered, {}",
        r.sent,
        r.answered,
        spent.describe(text::usd)
    );
    if let Some((n, since)) = r.in_flight {
        s.push_str(&format!(" · probe {n} out since {}", time(since)));
    } else if let Some(end) = r.last {
        let (n, at) = (end.probe, time(end.at));
        match end.outcome {
            Ok(()) => s.push_str(&format!(" · probe {n} answered at {at}")),
            Err(Some(class)) => s.push_str(&format!(" · probe {n} failed ({class}) at {at}")),
            Err(None) => s.push_str(&format!(" · probe {n} failed at {at}")),
        }
    }
    if let (Some(next), Some(now)) = (r.next_at, now) {
        s.push_str(&format!(
            ", next in {}",
            text::span((next - now).max(chrono::TimeDelta::zero()))
        ));
    }
    s
}

fn provider_summary(d: &mut Detail, dash: &Dashboard, p: &ProviderView) {
    d.field("protocol", format!("{} · model {}", p.protocol, p.model));
    if let Some(pool) = &p.pool {
        let strategy = dash
            .pools
            .iter()
            .find(|v| v.name == *pool)
            .map_or("weighted", |v| v.strategy.as_str());
        let others: Vec<&str> = dash
            .providers
            .iter()
            .filter(|o| o.pool.as_ref() == Some(pool) && o.name != p.name)
            .map(|o| o.name.as_str())
            .collect();
        let with = if others.is_empty() {
            String::new()
        } else {
            format!(", with {}", others.join(", "))
        };
        d.field(
            "pool",
            format!("{pool} ({strategy}), weight {}{with}", p.weight),
        );
    }
    let since = p.breaker_since.map(|t| format!(" since {}", time(t)));
    let mut breaker = format!("{}{}", state_word(p.breaker), since.unwrap_or_default());
    if !p.breaker_reason.is_empty() {
        breaker.push_str(&format!(" ({})", p.breaker_reason));
    }
    if let (Some(left), Some(_)) = (dash.now.and_then(|n| p.open_remaining(n)), p.open_until) {
        breaker.push_str(&format!(", half-open in {}", text::span(left)));
    }
    d.toned("breaker", breaker, Tone::State(p.breaker));
    for m in &p.models {
        d.toned(
            &format!("  {}", m.model),
            format!(
                "{} since {} ({})",
                state_word(m.state),
                time(m.since),
                m.reason
            ),
            Tone::State(m.state),
        );
    }
    let of = p.threshold.map(|n| format!(" of {n}")).unwrap_or_default();
    d.field(
        "in a row",
        format!(
            "{}{of}",
            text::plural(u64::from(p.consecutive_failures), "failure", "failures")
        ),
    );
    if p.recovery.sent > 0 {
        d.field("recovery probes", recovery_probes(p, dash.now));
    }
    if let Some(f) = &p.fault {
        d.field("fault", f.clone());
    }
    if let Some(f) = &p.flagged {
        d.toned("flagged", f.clone(), Tone::Failed);
    }
    let rate = p
        .success_rate()
        .map(text::percent)
        .unwrap_or_else(|| "—".into());
    d.field(
        "traffic",
        format!(
            "{}, {} answered, {} failed ({rate} ok), {} out",
            text::plural(p.attempts, "attempt", "attempts"),
            p.successes,
            p.failures,
            text::plural(u64::from(p.probes_in_flight), "probe", "probes")
        ),
    );
    let q = |q: f64| p.latency_ms(q).map_or("—".into(), text::millis);
    d.field(
        "first event",
        format!(
            "p50 {} · p90 {} · p95 {} · p99 {} · max {} ({} samples)",
            q(0.5),
            q(0.9),
            q(0.95),
            q(0.99),
            q(1.0),
            p.latency.len()
        ),
    );
    let t = p.tokens;
    d.field(
        "cost",
        format!(
            "{} ({} on failures)",
            p.cost().describe(text::usd),
            p.failed_cost().describe(text::usd)
        ),
    );
    d.field(
        "tokens",
        format!(
            "{} in, {} out, {} cache read, {} cache write",
            t.input, t.output, t.cache_read, t.cache_write
        ),
    );
}

/// What the provider's responses say of its rate limits, its throttling, and the requests that
/// went elsewhere because of it.
fn rate_limits(d: &mut Detail, dash: &Dashboard, p: &ProviderView) {
    let v = &p.rate_limits;
    // Nothing to say for a provider that never stated its limits (a local server, most tests).
    if !v.stated() {
        return;
    }
    d.heading("Rate limits (as its responses' headers state them)");
    let in_ = |at: Option<DateTime<Utc>>| match (at, dash.now) {
        (Some(at), Some(now)) if at > now => Some(text::span(at - now)),
        _ => None,
    };
    match &v.throttle {
        Some(t) => {
            let why = match (t.dimension, t.remaining) {
                (Some(dimension), Some(left)) => {
                    let of = t.limit.map(|l| format!(" of {l}")).unwrap_or_default();
                    format!("{} {left}{of} left", dimension.words())
                }
                _ => t.reason.clone(),
            };
            let lifts = in_(t.until).map(|s| format!(", lifts in {s}"));
            d.toned(
                "state",
                format!(
                    "THROTTLED since {}: {why}{} · new requests go to the next target first",
                    time(t.since),
                    lifts.unwrap_or_default()
                ),
                Tone::Throttled,
            );
        }
        None => d.field("state", "not throttled"),
    }
    for l in &v.limits {
        let left = l
            .remaining
            .map_or_else(|| "?".to_string(), |r| r.to_string());
        let mut value = match l.limit {
            Some(limit) => format!("{left} of {limit} left"),
            None => format!("{left} left"),
        };
        if let Some(s) = in_(l.reset_at) {
            value.push_str(&format!(", resets in {s}"));
        }
        d.field(&format!("  {}", l.dimension.words()), value);
    }
    d.field(
        "steered away",
        format!(
            "{} (throttled {})",
            text::plural(v.steered, "request", "requests"),
            text::plural(v.throttled_count, "time", "times")
        ),
    );
    if let (None, Some((at, throttled, reason))) = (&v.throttle, &v.last_reason) {
        let what = if *throttled { "throttled" } else { "lifted" };
        d.field("last change", format!("{} {what}: {reason}", time(*at)));
    }
}

fn breaker_history(d: &mut Detail, p: &ProviderView) {
    d.heading(format!(
        "Breaker history (newest first; the last {BREAKER_HISTORY_KEPT} are kept)"
    ));
    if p.breaker_history.is_empty() {
        d.text("closed since the start", 2, Tone::Muted);
    }
    for c in p.breaker_history.iter().rev() {
        let model = c
            .model
            .as_ref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        let recovery = c
            .recovery_ms
            .map(|ms| format!(", half-open after {}", text::millis(ms)))
            .unwrap_or_default();
        d.text(
            format!(
                "{}{model} {} → {}: {}{recovery}",
                time(c.at),
                state_word(c.from),
                state_word(c.to),
                c.reason
            ),
            2,
            Tone::State(c.to),
        );
    }
}

/// One failed attempt: a line of facts, then its message; `provider` names the provider (the
/// class's detail lists several).
fn error_row(d: &mut Detail, e: &ErrorDetail, provider: bool) {
    let who = if provider {
        format!(" {}", e.provider)
    } else {
        String::new()
    };
    let status = e.status.map(|s| format!(", HTTP {s}")).unwrap_or_default();
    let after = e
        .retry_after_ms
        .map(|ms| format!(", retry after {}", text::millis(ms)))
        .unwrap_or_default();
    d.text(
        format!(
            "{}{who} {} #{} {} {} in {}{status}{after}, after {}",
            time(e.at),
            e.request_id,
            e.attempt,
            retry_mark(e.retryable),
            e.class,
            e.phase,
            text::millis(e.elapsed_ms)
        ),
        2,
        Tone::Error {
            retryable: e.retryable,
        },
    );
    d.text(e.message.clone(), 4, Tone::Plain);
}

fn error_class(dash: &Dashboard, class: ErrorClass) -> Detail {
    let mut d = Detail::new(format!(" error class {class} "));
    let counts: Vec<_> = dash
        .errors
        .iter()
        .filter(|((_, c), _)| *c == class)
        .collect();
    let total: u64 = counts.iter().map(|(_, n)| n.count).sum();
    let retryable = counts.iter().any(|(_, n)| n.retryable);
    d.toned(
        "class",
        format!(
            "{} {class} ({})",
            retry_mark(retryable),
            retryable_word(retryable)
        ),
        Tone::Error { retryable },
    );
    let by: Vec<String> = counts
        .iter()
        .map(|((p, _), n)| format!("{p} {}", n.count))
        .collect();
    d.field("failures", format!("{total}: {}", by.join(" · ")));
    d.heading(format!(
        "Attempts of this class (newest first; the last {ERRORS_KEPT} are kept)"
    ));
    let recent = dash.class_errors.get(&class);
    if recent.is_none_or(|r| r.is_empty()) {
        d.text("none kept", 2, Tone::Muted);
    }
    for e in recent.into_iter().flatten().rev() {
        error_row(&mut d, e, true);
    }
    d
}

fn log_line(dash: &Dashboard, seq: u64) -> Detail {
    let Some(line) = dash.log.iter().rev().find(|l| l.seq == seq) else {
        let mut d = Detail::new(format!(" event #{seq} "));
        d.text("this event is no longer in the log", 0, Tone::Muted);
        return d;
    };
    let mut d = Detail::new(format!(" event #{seq} · {} ", line.kind));
    d.text(line.text.clone(), 0, Tone::Plain);
    d.heading("Fields");
    if line.fields.is_empty() {
        d.field("ts", line.at.to_rfc3339());
        d.field("type", line.kind);
    }
    for (name, value) in &line.fields {
        d.field(name, value.clone());
    }
    d
}
