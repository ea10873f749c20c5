//! A row per provider: its breaker (as a word and a colour), how close it is to tripping or to
//! recovering, what is left of its rate limit (and `THROTTLED` while requests steer past it), its
//! health, its first-event latency, its traffic and its cost. The selected row is
//! the one the breaker keys act on. A provider with a breaker per model (`breaker = "model"`) shows
//! the most severe of them on its row and, when it has more than one, a row under it per model
//! (`└ model`: its state, its countdown, its failures in a row, its reason).

use chrono::{DateTime, TimeDelta, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Table, TableState};

use super::columns::{self, Column};
use super::{Paint, text};
use crate::console::dashboard::{Dashboard, LimitView, ModelBreaker, ProviderView};
use crate::console::theme::{Theme, state_word};
use crate::console::ui::Focus;
use crate::engine::breaker::BreakerState;

const SELECTED: &str = "▶ ";
const SELECTED_WIDTH: u16 = 2;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let dash = paint.view.dash;
    let block = paint
        .theme
        .block(" providers ", paint.focused(Focus::Providers));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if dash.providers.is_empty() {
        let waiting = Line::styled(" waiting for the session to start…", paint.theme.muted);
        frame.render_widget(waiting, inner);
        return;
    }
    let available = inner.width.saturating_sub(SELECTED_WIDTH);
    let fitted = columns::fit(
        table_columns(paint),
        available,
        paint.theme.muted.patch(paint.theme.title),
    );
    let table = Table::new(fitted.rows, fitted.widths)
        .header(fitted.header)
        .column_spacing(columns::SPACING)
        .highlight_symbol(SELECTED)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(paint.theme.selected);
    let selected = paint
        .view
        .ui
        .selected_provider
        .min(dash.providers.len() - 1);
    // The selected provider's own row, below the model rows of those above it.
    let row: usize = dash.providers[..selected]
        .iter()
        .map(|p| 1 + listed_models(p).len())
        .sum();
    let mut state = TableState::default().with_selected(Some(row));
    frame.render_stateful_widget(table, inner, &mut state);
}

/// Every column, most important first in rank; `columns::fit` keeps what the width allows.
fn table_columns<'a>(paint: &Paint) -> Vec<Column<'a>> {
    let theme = &paint.theme;
    let now = paint.view.dash.now;
    let mut name = Column::new("provider", 0).max(20);
    let mut breaker = Column::new("breaker", 1);
    let mut next = Column::new("next", 2);
    let mut limits = Column::new("rate limit", 3);
    let mut fails = Column::new("fails", 3).right();
    let mut last_error = Column::new("last error", 4).max(26);
    let mut ok = Column::new("ok", 5).right();
    let mut p99 = Column::new("p99", 6).right();
    let mut p50 = Column::new("p50", 7).right();
    let mut rate = Column::new("rate", 8).right();
    let mut cost = Column::new("cost", 9).right();
    let mut p95 = Column::new("p95", 10).right();
    let mut model = Column::new("model", 11).max(24);
    let mut notes = Column::new("notes", 12).fill();
    for p in &paint.view.dash.providers {
        name.push(name_cell(p, theme));
        breaker.push(Span::styled(state_word(p.breaker), theme.state(p.breaker)));
        next.push(next_cell(p, now, theme));
        limits.push(limits_cell(p, now, theme));
        fails.push(failures(p.consecutive_failures, p.threshold));
        last_error.push(last_error_cell(p, now, theme));
        ok.push(p.success_rate().map_or(text::NONE.into(), text::percent));
        p50.push(latency(p, 0.50));
        p95.push(latency(p, 0.95));
        p99.push(latency(p, 0.99));
        rate.push(now.map_or(text::NONE.into(), |now| {
            format!("{:.1}/s", p.rate_per_sec(now))
        }));
        cost.push(text::usd(p.cost_usd));
        model.push(p.model.clone());
        notes.push(notes_cell(p, theme));
        for m in listed_models(p) {
            name.push(Span::styled(format!("└ {}", m.model), theme.muted));
            breaker.push(Span::styled(state_word(m.state), theme.state(m.state)));
            let left = now.and_then(|now| remaining(m.open_until, now));
            let next_model = next_for(m.state, left, m.probes_in_flight);
            next.push(
                next_model.map_or_else(Line::default, |t| Line::styled(t, theme.state(m.state))),
            );
            let why = (m.state != BreakerState::Closed).then(|| m.reason.clone());
            notes.push(why.unwrap_or_default());
            fails.push(failures(m.consecutive_failures, p.threshold));
            for column in [
                &mut limits,
                &mut last_error,
                &mut ok,
                &mut p50,
                &mut p95,
                &mut p99,
                &mut rate,
                &mut cost,
                &mut model,
            ] {
                column.push("");
            }
        }
    }
    let mut columns = vec![
        name, model, breaker, next, limits, fails, ok, p50, p95, p99, rate, cost, last_error, notes,
    ];
    // A column of dashes says nothing: shown once some provider has stated its rate limits.
    if !paint
        .view
        .dash
        .providers
        .iter()
        .any(|p| p.rate_limits.stated())
    {
        columns.remove(4);
    }
    columns
}

/// The name, flagged with `⚑` so a misconfigured provider shows even when the notes do not fit.
fn name_cell<'a>(p: &ProviderView, theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::styled(p.name.clone(), theme.title)];
    if p.flagged.is_some() {
        spans.push(Span::styled(" ⚑", theme.fatal));
    }
    Line::from(spans)
}

fn next_cell<'a>(p: &ProviderView, now: Option<DateTime<Utc>>, theme: &Theme) -> Line<'a> {
    next_text(p, now).map_or_else(Line::default, |t| Line::styled(t, theme.state(p.breaker)))
}

/// What is left of the provider's tightest rate limit and when it resets (`req 45/50 41s`);
/// `THROTTLED req 0/8 2s` while it is throttled (a state of its own, not the breaker's).
fn limits_cell<'a>(p: &ProviderView, now: Option<DateTime<Utc>>, theme: &Theme) -> Line<'a> {
    let v = &p.rate_limits;
    let Some(l) = v.tightest() else {
        return Line::raw(text::NONE);
    };
    let mut cell = limit_text(l);
    let reset = v.throttle.as_ref().and_then(|t| t.until).or(l.reset_at);
    match now.and_then(|now| remaining(reset, now)) {
        // Padded: the column keeps its width while the countdown ticks.
        Some(left) if left > TimeDelta::zero() => {
            let left = text::short_span(left);
            cell.push_str(&format!(" {left:<w$}", w = text::AGO_WIDTH));
        }
        // What was stated is from before the reset: the limit is whole again.
        Some(_) => cell.push_str(" reset"),
        None => {}
    }
    match v.throttle {
        Some(_) => Line::styled(format!("THROTTLED {cell}"), theme.throttled),
        None => Line::raw(cell),
    }
}

/// `req 45/50`, `tok 1.2M/2.0M`, `out 300`: one dimension of a rate limit, as a cell shows it.
pub fn limit_text(l: &LimitView) -> String {
    use crate::event::LimitDimension::*;
    let name = match l.dimension {
        Requests => "req",
        Tokens => "tok",
        InputTokens => "in",
        OutputTokens => "out",
    };
    let left = l.remaining.map_or_else(|| "?".to_string(), text::count);
    match l.limit {
        Some(limit) => format!("{name} {left}/{}", text::count(limit)),
        None => format!("{name} {left}"),
    }
}

/// Failures in a row, against the breaker's threshold when the session told it: `3 of 5`, and
/// past it (a breaker that tripped and failed its probes) `6, limit 5`.
fn failures(n: u32, threshold: Option<u32>) -> String {
    match threshold {
        Some(t) if n > t => format!("{n}, limit {t}"),
        Some(t) => format!("{n} of {t}"),
        None => n.to_string(),
    }
}

/// The models listed under a provider's row: those of a provider with a breaker per model, when
/// it has more than one (with one, the provider's row is its breaker).
pub fn listed_models(p: &ProviderView) -> &[ModelBreaker] {
    if p.models.len() > 1 { &p.models } else { &[] }
}

/// The rows the providers table needs: one per provider and one per listed model.
pub fn rows(dash: &Dashboard) -> usize {
    dash.providers
        .iter()
        .map(|p| 1 + listed_models(p).len())
        .sum()
}

/// What happens next to the breaker: the countdown to half-open, the probes, or the operator's hold.
pub fn next_text(p: &ProviderView, now: Option<DateTime<Utc>>) -> Option<String> {
    let left = now.and_then(|now| p.open_remaining(now));
    next_for(p.breaker, left, p.probes_in_flight)
}

/// What happens next to a breaker in `state`, `left` before it goes half-open (while open).
fn next_for(state: BreakerState, left: Option<TimeDelta>, probes: u32) -> Option<String> {
    let next = match state {
        BreakerState::Closed => return None,
        BreakerState::Open => match left {
            // Padded: the column keeps its width while the countdown ticks.
            Some(left) if left.num_seconds() > 0 => {
                let left = text::short_span(left);
                format!("half-open in {left:<w$}", w = text::AGO_WIDTH)
            }
            Some(_) => "half-open next request".to_string(),
            None => "waiting to recover".to_string(),
        },
        BreakerState::HalfOpen if probes > 0 => format!(
            "{} in flight",
            text::plural(u64::from(probes), "probe", "probes")
        ),
        BreakerState::HalfOpen => "probe next request".to_string(),
        BreakerState::ForcedOpen | BreakerState::ForcedClosed => "until reset".to_string(),
    };
    Some(next)
}

/// Time left before a breaker open until `until` goes half-open.
fn remaining(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<TimeDelta> {
    until.map(|until| (until - now).max(TimeDelta::zero()))
}

/// The last error's class and how long ago it was: `↻ rate_limited 18s ago` (the age padded so
/// the column keeps its width as it grows).
fn last_error_cell<'a>(p: &ProviderView, now: Option<DateTime<Utc>>, theme: &Theme) -> Line<'a> {
    let Some(e) = &p.last_error else {
        return Line::raw(text::NONE);
    };
    let mut spans = vec![Span::styled(
        format!("{} {}", retry_mark(e.retryable), e.class.as_str()),
        theme.error(e.retryable),
    )];
    if let Some(now) = now {
        let ago = format!("{} ago", text::short_span(now - e.at));
        spans.push(Span::raw(format!(" {ago:<w$}", w = text::AGO_WIDTH + 4)));
    }
    Line::from(spans)
}

/// `↻` for an error worth retrying elsewhere, `⊘` for one that is not: readable without colour.
/// (`✗` is kept for one meaning, a failed attempt.)
pub fn retry_mark(retryable: bool) -> &'static str {
    if retryable { "↻" } else { "⊘" }
}

fn latency(p: &ProviderView, q: f64) -> String {
    p.latency_ms(q).map_or(text::NONE.into(), text::millis)
}

/// Why the provider is as it is: a flag, the breaker's reason, the simulated fault in force.
fn notes_cell<'a>(p: &ProviderView, theme: &Theme) -> Line<'a> {
    let mut spans = Vec::new();
    if let Some(flag) = &p.flagged {
        spans.push(Span::styled(format!("⚑ {flag}"), theme.fatal));
    }
    if p.breaker != BreakerState::Closed && !p.breaker_reason.is_empty() {
        if !spans.is_empty() {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::raw(p.breaker_reason.clone()));
    }
    if let Some(fault) = p.fault.as_deref().filter(|f| *f != "none") {
        if !spans.is_empty() {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::styled(format!("fault {fault}"), theme.title));
    }
    Line::from(spans)
}
