//! In a replay, where the prompt would be: the position in the recording, its length, the speed,
//! and a progress bar (the replay is read-only, so there is nothing to type). The bar carries the
//! recording's marks where they happened: failovers `↪`, breakers opening `█` (`╳` when the operator
//! tripped one), operator actions `◆` — each its own glyph, so they read without colour too. Where
//! two share a cell the rarer shows: a breaker opening, then an operator action, then a failover;
//! the playhead `●` shows over them all.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{Paint, text};
use crate::console::replay::{Marks, ReplayView};
use crate::console::theme::{Theme, state_glyph};
use crate::engine::breaker::BreakerState;

/// The glyph of a failover and of an operator action on the bar.
pub const FAILOVER_GLYPH: &str = "↪";
pub const OPERATOR_GLYPH: &str = "◆";
/// Where the replay is.
pub const PLAYHEAD: &str = "●";

/// A mark in a cell of the bar, the rarer kinds last (the one shown wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cell {
    Failover,
    Operator,
    Opened(BreakerState),
}

impl Cell {
    fn glyph(self) -> &'static str {
        match self {
            Cell::Failover => FAILOVER_GLYPH,
            Cell::Operator => OPERATOR_GLYPH,
            Cell::Opened(state) => state_glyph(state),
        }
    }

    fn style(self, theme: &Theme) -> Style {
        match self {
            Cell::Failover => theme.retryable,
            // The operator's colour: that of the states only an operator sets.
            Cell::Operator => theme.state(BreakerState::ForcedOpen),
            Cell::Opened(state) => theme.state(state),
        }
    }
}

/// The legend on the bar's top border, when there is room for it.
const LEGEND: &str = " ↪ failover  █ breaker opened  ◆ operator ";

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, replay: &ReplayView) {
    let theme = &paint.theme;
    let ended = replay.total == Some(replay.applied) && replay.end == Some(replay.position);
    let state = match (replay.paused, ended) {
        (true, _) => "paused",
        (false, true) => "at the end",
        (false, false) => "playing",
    };
    // The file's name, not its path: the state must not be the part cut on a narrow bar.
    let file = std::path::Path::new(&replay.file)
        .file_name()
        .map_or_else(|| replay.file.clone(), |n| n.to_string_lossy().into_owned());
    let title = format!(" replay · {state} {} · {file} ", replay.speed.label());
    let room = usize::from(area.width).saturating_sub(4);
    let mut block = theme.block(text::fit(&title, room), false);
    if text::width(&title) + text::width(LEGEND) + 2 <= room {
        block = block.title(Line::styled(LEGEND, theme.muted).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let position = text::clock_span(replay.position - replay.start);
    let length = replay.end.map_or_else(
        || "…".to_string(),
        |end| text::clock_span(end - replay.start),
    );
    let counts = match replay.total {
        Some(total) => format!("event {}/{total}", replay.applied),
        None => format!("event {} (reading the file…)", replay.applied),
    };
    let skipped = if replay.skipped > 0 {
        format!("  {} unreadable lines skipped", replay.skipped)
    } else {
        String::new()
    };
    let label = format!(" {position} / {length}  {counts}{skipped} ");
    let width = usize::from(inner.width).saturating_sub(text::width(&label) + 1);
    let mut spans = bar(replay, width, theme);
    spans.push(Span::styled(label, theme.title));
    frame.render_widget(Line::from(spans), inner);
}

/// The bar, `width` cells: played `━`, to come `─`, and the marks where they happened.
fn bar<'a>(replay: &ReplayView, width: usize, theme: &Theme) -> Vec<Span<'a>> {
    let Some(end) = replay.end.filter(|end| *end > replay.start) else {
        return vec![Span::styled("─".repeat(width), theme.muted)];
    };
    let cell = |t: DateTime<Utc>| column(replay.start, end, t, width);
    // Played: every cell up to the position's (at the very start, none).
    let done = match cell(replay.position) {
        Some(c) if replay.position > replay.start => c + 1,
        _ => 0,
    };
    let cells = mark_cells(&replay.marks, width, cell);
    let mut spans = Vec::new();
    for (i, mark) in cells.iter().enumerate() {
        spans.push(match mark {
            // Where the replay is, over any mark there: with an incident's many failovers, the
            // marks alone would hide how far it has played.
            _ if i + 1 == done || (done == 0 && i == 0) => Span::styled(PLAYHEAD, theme.key),
            Some(mark) => Span::styled(mark.glyph(), mark.style(theme)),
            None if i < done => Span::styled("━", theme.ok),
            None => Span::styled("─", theme.muted),
        });
    }
    spans
}

/// The cell of each of the bar's `width` that shows a mark, and which.
fn mark_cells(
    marks: &Marks,
    width: usize,
    cell: impl Fn(DateTime<Utc>) -> Option<usize>,
) -> Vec<Option<Cell>> {
    let mut cells: Vec<Option<Cell>> = vec![None; width];
    let mut put = |at: DateTime<Utc>, mark: Cell| {
        if let Some(slot) = cell(at).and_then(|c| cells.get_mut(c)) {
            *slot = (*slot).max(Some(mark));
        }
    };
    for m in &marks.failovers {
        put(m.at, Cell::Failover);
    }
    for at in &marks.operator_actions {
        put(*at, Cell::Operator);
    }
    for m in marks.breakers.iter().filter(|m| m.to.is_open()) {
        put(m.at, Cell::Opened(m.to));
    }
    cells
}

/// The cell of the bar a moment falls in, the recording running from `start` to `end`.
fn column(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    at: DateTime<Utc>,
    width: usize,
) -> Option<usize> {
    if width == 0 {
        return None;
    }
    let whole = (end - start).num_milliseconds().max(1) as f64;
    let part = (at - start).num_milliseconds().clamp(0, i64::MAX) as f64;
    let c = (part / whole * width as f64).floor() as usize;
    Some(c.min(width - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn moments_fall_in_the_cells_of_their_time() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let end = t0 + TimeDelta::seconds(100);
        let at = |s: i64| column(t0, end, t0 + TimeDelta::seconds(s), 10);
        assert_eq!(at(0), Some(0));
        assert_eq!(at(9), Some(0));
        assert_eq!(at(10), Some(1));
        assert_eq!(at(55), Some(5));
        assert_eq!(at(100), Some(9), "the end is in the last cell");
        assert_eq!(at(-5), Some(0));
        assert_eq!(column(t0, end, end, 0), None);
    }
}
