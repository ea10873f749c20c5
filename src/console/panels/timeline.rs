//! Each breaker's state over the last minutes: one cell per time step ending at `now`, showing the
//! worst state the breaker was in during that step, so a short trip is never smoothed away.
//! Operator-forced spans are magenta and drawn with their own glyphs, so they stand out without
//! colour too. An axis and a legend follow when the panel has rows for them.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::window::Window;
use super::{Paint, text};
use crate::console::dashboard::{BreakerSpan, ProviderView};
use crate::console::theme::{state_glyph, state_word};
use crate::engine::breaker::BreakerState;

/// The span the panel tries to cover.
const WANTED: TimeDelta = TimeDelta::minutes(10);
/// Name on the left of the bars.
const GUTTER: u16 = 12;
const LEGEND: [BreakerState; 5] = [
    BreakerState::Closed,
    BreakerState::HalfOpen,
    BreakerState::Open,
    BreakerState::ForcedOpen,
    BreakerState::ForcedClosed,
];

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let dash = paint.view.dash;
    let cells = usize::from(area.width.saturating_sub(2 + GUTTER));
    let window = dash.now.map(|now| Window::new(now, cells, WANTED));
    let title = match window {
        Some(w) => format!(" breaker timeline · {}/cell ", text::span(w.step)),
        None => " breaker timeline ".to_string(),
    };
    let block = paint.theme.block(title, false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(window) = window else {
        return;
    };
    let mut lines: Vec<Line> = dash
        .providers
        .iter()
        .map(|p| provider_row(p, &window, dash.started_at, paint))
        .collect();
    let spare = usize::from(inner.height).saturating_sub(lines.len());
    if spare >= 1 && !lines.is_empty() {
        lines.push(axis(&window, inner.width, paint));
    }
    if spare >= 2 && !lines.is_empty() {
        lines.push(legend(inner.width, paint));
    }
    text::draw_lines(frame, inner, lines);
}

fn provider_row<'a>(
    p: &ProviderView,
    window: &Window,
    started: Option<DateTime<Utc>>,
    paint: &Paint,
) -> Line<'a> {
    let name = text::pad(&p.name, usize::from(GUTTER - 1)) + " ";
    let mut spans = vec![Span::styled(name, paint.theme.title)];
    let cells = states(p, window, started).into_iter().map(|s| match s {
        Some(state) => (state_glyph(state), paint.theme.state(state)),
        None => (" ", Style::new()),
    });
    spans.extend(text::runs(cells));
    Line::from(spans)
}

/// The worst state of each step; `None` before anything is known (before the session started).
fn states(
    p: &ProviderView,
    window: &Window,
    started: Option<DateTime<Utc>>,
) -> Vec<Option<BreakerState>> {
    if p.timeline.is_empty() {
        // No change recorded: the breaker has been in its current state since it was last set.
        let since = BreakerSpan {
            from: p
                .breaker_since
                .or(started)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            state: p.breaker,
        };
        return states_in(&VecDeque::from([since]), window, started);
    }
    states_in(&p.timeline, window, started)
}

fn states_in(
    spans: &VecDeque<BreakerSpan>,
    window: &Window,
    started: Option<DateTime<Utc>>,
) -> Vec<Option<BreakerState>> {
    let mut out = Vec::with_capacity(window.cells);
    let start = window.start();
    let mut next = spans.partition_point(|s| s.from <= start);
    let mut current = next.checked_sub(1).map(|i| spans[i].state);
    for i in 0..window.cells {
        let end = window.cell_end(i);
        let mut worst = current;
        while let Some(span) = spans.get(next).filter(|s| s.from <= end) {
            current = Some(span.state);
            worst = worse(worst, span.state);
            next += 1;
        }
        let before_session = started.is_some_and(|s| end < s);
        out.push(if before_session { None } else { worst });
    }
    out
}

/// Forced states first (the operator's hand shows), then open, half-open, closed.
fn severity(state: BreakerState) -> u8 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
        BreakerState::ForcedClosed => 3,
        BreakerState::ForcedOpen => 4,
    }
}

fn worse(a: Option<BreakerState>, b: BreakerState) -> Option<BreakerState> {
    Some(match a {
        Some(a) if severity(a) >= severity(b) => a,
        _ => b,
    })
}

/// `-10m` on the left, the middle, and `now` on the right, under the bars.
fn axis<'a>(window: &Window, width: u16, paint: &Paint) -> Line<'a> {
    let bars = usize::from(width.saturating_sub(GUTTER));
    let left = format!("-{}", text::span(window.span()));
    let middle = format!("-{}", text::span(window.span() / 2));
    let right = "now";
    let gap = bars.saturating_sub(left.len() + middle.len() + right.len());
    let axis = format!(
        "{:w$}{left}{:a$}{middle}{:b$}{right}",
        "",
        "",
        "",
        w = usize::from(GUTTER),
        a = gap / 2,
        b = gap - gap / 2,
    );
    Line::styled(axis, paint.theme.muted)
}

/// Under the bars when they leave room, from the left edge when they do not.
fn legend<'a>(width: u16, paint: &Paint) -> Line<'a> {
    let words = LEGEND.map(|state| state_word(state).to_lowercase());
    let roomy: usize = words.iter().map(|w| text::width(w) + 4).sum();
    let (indent, gap) = if usize::from(GUTTER) + roomy <= usize::from(width) {
        (usize::from(GUTTER), "  ")
    } else {
        (0, " ")
    };
    let mut spans = vec![Span::raw(" ".repeat(indent))];
    for (state, word) in LEGEND.into_iter().zip(words) {
        spans.push(Span::styled(state_glyph(state), paint.theme.state(state)));
        spans.push(Span::styled(format!(" {word}{gap}"), paint.theme.muted));
    }
    Line::from(spans)
}
