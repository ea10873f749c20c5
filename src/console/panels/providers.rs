//! A row per provider: its breaker (as a word and a colour), how close it is to tripping or to
//! recovering, what is left of its rate limit (and `THROTTLED` while requests steer past it), its
//! health, its first-event latency, its traffic and its cost. The selected row is
//! the one the breaker keys act on. A provider with a breaker per model (`breaker = "model"`) shows
//! the most severe of them on its row and, when it has more than one, a row under it per model
//! (`└ model`: its state, its countdown, its failures in a row, its reason). The members of a pool
//! stand under a row of its own (its name, its strategy, how many members are up, their traffic
//! and cost together), each member its own row and breaker (`├ member`, `└ member`, with its
//! weight when it is not 1).

use chrono::{DateTime, TimeDelta, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Table, TableState};

use super::columns::{self, Column};
use super::{Paint, text};
use crate::console::dashboard::{
    Dashboard, Fleet, LimitView, ModelBreaker, PoolView, ProviderView,
};
use crate::console::theme::{Theme, state_word};
use crate::console::ui::Focus;
use crate::engine::breaker::BreakerState;
use crate::event::facts::Spend;

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
    // The selected provider's own row, below the model rows of those above it and the pool rows
    // above it and its own.
    let row: usize = dash.providers[..selected]
        .iter()
        .map(|p| 1 + listed_models(p).len())
        .sum::<usize>()
        + (0..=selected).filter(|&i| opens_pool(dash, i)).count();
    let mut state = TableState::default().with_selected(Some(row));
    frame.render_stateful_widget(table, inner, &mut state);
}

/// Every column, most important first in rank; `columns::fit` keeps what the width allows.
fn table_columns<'a>(paint: &Paint) -> Vec<Column<'a>> {
    let dash = paint.view.dash;
    let mut table = Columns::new(&paint.theme, dash.now, dash.gateways.as_deref());
    for (i, p) in dash.providers.iter().enumerate() {
        if opens_pool(dash, i) {
            table.pool_row(&pool_of(dash, p), pool_members(dash, i));
        }
        let branch = member_branch(dash, i);
        table.provider_row(p, branch.map(|(b, _)| b));
        let under = branch.map_or("", |(_, under)| under);
        for m in listed_models(p) {
            table.model_row(p, m, under);
        }
    }
    let mut columns = table.into_vec();
    // A column of dashes says nothing: shown once some provider has stated its rate limits.
    if !dash.providers.iter().any(|p| p.rate_limits.stated()) {
        columns.remove(4);
    }
    columns
}

/// The table's columns as its rows are added.
struct Columns<'a, 't> {
    theme: &'t Theme,
    now: Option<DateTime<Utc>>,
    /// Over a fleet: a breaker says how many members are in its state (`OPEN 2/3`).
    fleet: Option<&'t Fleet>,
    name: Column<'a>,
    breaker: Column<'a>,
    next: Column<'a>,
    limits: Column<'a>,
    fails: Column<'a>,
    last_error: Column<'a>,
    ok: Column<'a>,
    p99: Column<'a>,
    p50: Column<'a>,
    rate: Column<'a>,
    cost: Column<'a>,
    p95: Column<'a>,
    model: Column<'a>,
    notes: Column<'a>,
}

impl<'a, 't> Columns<'a, 't> {
    fn new(theme: &'t Theme, now: Option<DateTime<Utc>>, fleet: Option<&'t Fleet>) -> Self {
        Columns {
            theme,
            now,
            fleet,
            name: Column::new("provider", 0).max(20),
            breaker: Column::new("breaker", 1),
            next: Column::new("next", 2),
            limits: Column::new("rate limit", 3),
            fails: Column::new("fails", 3).right(),
            last_error: Column::new("last error", 4).max(26),
            ok: Column::new("ok", 5).right(),
            p99: Column::new("p99", 6).right(),
            p50: Column::new("p50", 7).right(),
            rate: Column::new("rate", 8).right(),
            cost: Column::new("cost", 9).right(),
            p95: Column::new("p95", 10).right(),
            model: Column::new("model", 11).max(24),
            notes: Column::new("notes", 12).fill(),
        }
    }

    /// A provider's own row; `branch` draws it under its pool.
    fn provider_row(&mut self, p: &ProviderView, branch: Option<&'static str>) {
        let (theme, now) = (self.theme, self.now);
        self.name.push(name_cell(p, branch, theme));
        let state = match self.fleet.and_then(|f| f.breaker(&p.name)) {
            Some(b) => format!("{} {}/{}", state_word(b.state), b.in_state, b.of),
            None => state_word(p.breaker).to_string(),
        };
        self.breaker
            .push(Span::styled(state, theme.state(p.breaker)));
        self.next.push(next_cell(p, now, theme));
        self.limits.push(limits_cell(p, now, theme));
        self.fails
            .push(failures(p.consecutive_failures, p.threshold));
        self.last_error.push(last_error_cell(p, now, theme));
        self.ok
            .push(p.success_rate().map_or(text::NONE.into(), text::percent));
        self.p50.push(latency(p, 0.50));
        self.p95.push(latency(p, 0.95));
        self.p99.push(latency(p, 0.99));
        self.rate.push(now.map_or(text::NONE.into(), |now| {
            format!("{:.1}/s", p.rate_per_sec(now))
        }));
        self.cost.push(p.cost().cell(text::usd));
        self.model.push(p.model.clone());
        self.notes.push(notes_cell(p, theme));
    }

    /// The row of one of `p`'s per-model breakers; `under` continues its pool's branch.
    fn model_row(&mut self, p: &ProviderView, m: &ModelBreaker, under: &str) {
        let theme = self.theme;
        self.name
            .push(Span::styled(format!("{under}└ {}", m.model), theme.muted));
        self.breaker
            .push(Span::styled(state_word(m.state), theme.state(m.state)));
        let left = self.now.and_then(|now| remaining(m.open_until, now));
        let next = next_for(m.state, left, m.probes_in_flight);
        self.next
            .push(next.map_or_else(Line::default, |t| Line::styled(t, theme.state(m.state))));
        let why = (m.state != BreakerState::Closed).then(|| m.reason.clone());
        self.notes.push(why.unwrap_or_default());
        self.fails
            .push(failures(m.consecutive_failures, p.threshold));
        for column in [
            &mut self.limits,
            &mut self.last_error,
            &mut self.ok,
            &mut self.p50,
            &mut self.p95,
            &mut self.p99,
            &mut self.rate,
            &mut self.cost,
            &mut self.model,
        ] {
            column.push("");
        }
    }

    /// A pool's row above its members: its strategy, how many members are up, their success
    /// rate, traffic and cost together.
    fn pool_row(&mut self, pool: &PoolView, members: &[ProviderView]) {
        let theme = self.theme;
        self.name.push(Span::styled(pool.name.clone(), theme.title));
        let strategy = pool.strategy.as_str().replace('_', " ");
        self.model
            .push(Span::styled(format!("pool · {strategy}"), theme.muted));
        self.breaker.push(members_up(members, theme));
        self.ok
            .push(pool_success_rate(members).map_or(text::NONE.into(), text::percent));
        self.rate.push(self.now.map_or(String::new(), |now| {
            let sum: f64 = members.iter().map(|m| m.rate_per_sec(now)).sum();
            format!("{sum:.1}/s")
        }));
        let mut spent = Spend::default();
        for m in members {
            spent.add(m.cost());
        }
        self.cost.push(spent.cell(text::usd));
        for column in [
            &mut self.next,
            &mut self.limits,
            &mut self.fails,
            &mut self.last_error,
            &mut self.p50,
            &mut self.p95,
            &mut self.p99,
            &mut self.notes,
        ] {
            column.push("");
        }
    }

    fn into_vec(self) -> Vec<Column<'a>> {
        vec![
            self.name,
            self.model,
            self.breaker,
            self.next,
            self.limits,
            self.fails,
            self.ok,
            self.p50,
            self.p95,
            self.p99,
            self.rate,
            self.cost,
            self.last_error,
            self.notes,
        ]
    }
}

/// The name (after its branch under its pool, for a member, and with its weight when it is not
/// 1), flagged with `⚑` so a misconfigured provider shows even when the notes do not fit.
fn name_cell<'a>(p: &ProviderView, branch: Option<&'static str>, theme: &Theme) -> Line<'a> {
    let mut spans = Vec::new();
    if let Some(branch) = branch {
        spans.push(Span::styled(branch, theme.muted));
    }
    spans.push(Span::styled(p.name.clone(), theme.title));
    if p.pool.is_some() && p.weight != 1 {
        spans.push(Span::styled(format!(" ×{}", p.weight), theme.muted));
    }
    if p.flagged.is_some() {
        spans.push(Span::styled(" ⚑", theme.fatal));
    }
    Line::from(spans)
}

/// Whether provider `i` is the first of its pool's members: its pool's row goes above it.
fn opens_pool(dash: &Dashboard, i: usize) -> bool {
    let Some(pool) = dash.providers.get(i).and_then(|p| p.pool.as_ref()) else {
        return false;
    };
    i == 0 || dash.providers[i - 1].pool.as_ref() != Some(pool)
}

/// The members of the pool whose first member is provider `i` (they stand together).
fn pool_members(dash: &Dashboard, i: usize) -> &[ProviderView] {
    let pool = &dash.providers[i].pool;
    let n = dash.providers[i..]
        .iter()
        .take_while(|p| p.pool == *pool)
        .count();
    &dash.providers[i..i + n]
}

/// The pool `p` is a member of, as the session declared it (a weighted one, if it did not).
fn pool_of(dash: &Dashboard, p: &ProviderView) -> PoolView {
    let name = p.pool.clone().unwrap_or_default();
    dash.pools
        .iter()
        .find(|pool| pool.name == name)
        .cloned()
        .unwrap_or(PoolView {
            name,
            strategy: Default::default(),
        })
}

/// For a pool's member: its branch (`├ `, the last `└ `), and what goes before the rows under it.
fn member_branch(dash: &Dashboard, i: usize) -> Option<(&'static str, &'static str)> {
    let pool = dash.providers.get(i)?.pool.as_ref()?;
    let last = dash.providers.get(i + 1).and_then(|p| p.pool.as_ref()) != Some(pool);
    Some(if last {
        ("└ ", "  ")
    } else {
        ("├ ", "│ ")
    })
}

/// How many of a pool's members take requests (their breaker not open), as words and a colour:
/// all of them (closed's), some (half-open's), none (open's).
fn members_up<'a>(members: &[ProviderView], theme: &Theme) -> Span<'a> {
    let up = members.iter().filter(|m| !m.breaker.is_open()).count();
    let state = match up {
        0 => BreakerState::Open,
        n if n == members.len() => BreakerState::Closed,
        _ => BreakerState::HalfOpen,
    };
    Span::styled(format!("{up} of {} up", members.len()), theme.state(state))
}

/// The share of the members' ended attempts that succeeded.
fn pool_success_rate(members: &[ProviderView]) -> Option<f64> {
    let ok: u64 = members.iter().map(|m| m.successes).sum();
    let failed: u64 = members.iter().map(|m| m.failures).sum();
    (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64)
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

/// The rows the providers table needs: one per provider, one per listed model and one per pool.
pub fn rows(dash: &Dashboard) -> usize {
    dash.providers
        .iter()
        .map(|p| 1 + listed_models(p).len())
        .sum::<usize>()
        + (0..dash.providers.len())
            .filter(|&i| opens_pool(dash, i))
            .count()
}

/// What happens next to the breaker: its recovery probe (out now, or the next one's countdown),
/// the countdown to half-open, the half-open probes, or the operator's hold.
pub fn next_text(p: &ProviderView, now: Option<DateTime<Utc>>) -> Option<String> {
    if p.breaker == BreakerState::Open {
        if let Some((n, _)) = p.recovery.in_flight {
            return Some(format!("recovery probe {n} out"));
        }
        if let Some(left) = now.and_then(|now| remaining(p.recovery.next_at, now)) {
            let left = text::short_span(left);
            return Some(format!("probe in {left:<w$}", w = text::AGO_WIDTH));
        }
    }
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
