//! The recent requests, newest first, to pick the one the reply panel shows: its status, who
//! answered (`↪` when it failed over), how long it took and what it cost.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Table, TableState};

use super::columns::{self, Column};
use super::{Paint, text};
use crate::console::dashboard::{Dashboard, RequestView};
use crate::console::keys::Action;
use crate::console::theme::Theme;
use crate::console::ui::{Focus, Ui};
use crate::event::Outcome;

const SELECTED: &str = "▶ ";
const SELECTED_WIDTH: u16 = 2;

/// The request the reply panel shows: the one picked, else the newest.
pub fn selected<'d>(dash: &'d Dashboard, ui: &Ui) -> Option<&'d RequestView> {
    ui.selected_request
        .as_deref()
        .and_then(|id| dash.requests.iter().rev().find(|r| r.id == id))
        .or_else(|| dash.requests.back())
}

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let dash = paint.view.dash;
    let theme = &paint.theme;
    let title = title(dash.requests.len(), dash.totals.requests, area.width);
    let mut block = theme.block(title, paint.focused(Focus::Requests));
    let inner = block.inner(area);
    if dash.requests.is_empty() {
        frame.render_widget(block, area);
        frame.render_widget(Line::styled(" none yet", theme.muted), inner);
        return;
    }
    let chosen = selected(dash, paint.view.ui).map(|r| r.id.as_str());
    let row = dash
        .requests
        .iter()
        .rev()
        .position(|r| Some(r.id.as_str()) == chosen)
        .unwrap_or(0);
    // Only the rows that fit are built (the list holds hundreds), scrolled to keep the selection.
    let shown = usize::from(inner.height.saturating_sub(1)).max(1);
    let first = (row + 1).saturating_sub(shown);
    // Picked, the list stops following: say so, and how many newer rows are hidden above.
    if paint.view.ui.selected_request.is_some() {
        let keys = paint.view.keys.describe(Action::Top);
        let newer = match first {
            0 => String::new(),
            n => format!("↑ {n} newer · "),
        };
        // The longest that fits the border.
        let place = [
            format!(" {newer}{keys} or Esc follows "),
            format!(" {newer}Esc follows "),
            format!(" {newer}"),
        ]
        .into_iter()
        .find(|p| text::width(p) + 2 <= usize::from(area.width))
        .unwrap_or_default();
        block = block.title_bottom(Line::styled(place, theme.title).right_aligned());
    }
    frame.render_widget(block, area);
    let available = inner.width.saturating_sub(SELECTED_WIDTH);
    let fitted = columns::fit(
        table_columns(paint, first, shown),
        available,
        theme.muted.patch(theme.title),
    );
    let table = Table::new(fitted.rows, fitted.widths)
        .header(fitted.header)
        .column_spacing(columns::SPACING)
        .highlight_symbol(SELECTED)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(theme.selected);
    let mut state = TableState::default().with_selected(Some(row - first));
    frame.render_stateful_widget(table, inner, &mut state);
}

/// ` requests · 57 `, or, once the oldest are no longer kept, ` requests · newest 200 of 223 `
/// (shorter in a narrow panel, never cut): the list's length is never mistaken for the session's
/// total (the header's).
fn title(kept: usize, total: u64, width: u16) -> String {
    if kept as u64 >= total {
        return format!(" requests · {kept} ");
    }
    let room = usize::from(width).saturating_sub(2);
    [
        format!(" requests · newest {kept} of {total} "),
        format!(" requests · {kept} of {total} "),
        format!(" {kept} of {total} requests "),
        format!(" {kept} of {total} "),
    ]
    .into_iter()
    .find(|t| text::width(t) <= room)
    .unwrap_or_else(|| format!(" {kept} "))
}

/// Newest first, `count` requests from the `first`. No cell is muted: the selected row's grey
/// background would hide muted grey.
fn table_columns<'a>(paint: &Paint, first: usize, count: usize) -> Vec<Column<'a>> {
    let dash = paint.view.dash;
    let theme = &paint.theme;
    // A fleet's ids name their gateway (`gw-a/r12`).
    let widest = if dash.gateways.is_some() { 28 } else { 10 };
    let mut id = Column::new("id", 0).max(widest);
    let mut status = Column::new("status", 1);
    // Filling, so the numbers line up against the right border.
    let mut provider = Column::new("provider", 2).fill();
    let mut took = Column::new("time", 4).right();
    let mut cost = Column::new("cost", 3).right();
    for r in dash.requests.iter().rev().skip(first).take(count) {
        id.push(Span::styled(r.id.clone(), theme.title));
        status.push(status_cell(r, theme));
        provider.push(provider_cell(r));
        took.push(took_cell(r, paint));
        cost.push(r.cost().cell(text::usd));
    }
    vec![id, status, provider, took, cost]
}

/// `ok`, `failed`, `cancelled` (the caller went away), `streaming` (a first event came),
/// `waiting` (none yet), with `⟲` when text was withdrawn on the way.
fn status_cell<'a>(r: &RequestView, theme: &Theme) -> Line<'a> {
    let (word, style) = match r.outcome {
        Some(Outcome::Ok) => ("ok", theme.ok),
        Some(Outcome::Error) if r.cancelled() => ("cancelled", theme.title),
        Some(Outcome::Error) => ("failed", theme.failed),
        None if r.streaming() => ("streaming", theme.title),
        None => ("waiting", Style::new()),
    };
    let mut spans = vec![Span::styled(word, style)];
    if !r.rewinds.is_empty() {
        spans.push(Span::raw(" ⟲"));
    }
    Line::from(spans)
}

/// Who answered; `↪` marks a provider other than the first of the chain (a failover).
fn provider_cell<'a>(r: &RequestView) -> Line<'a> {
    match &r.provider {
        Some(p) if r.chain.first() != Some(p) => Line::raw(format!("↪ {p}")),
        Some(p) => Line::raw(p.clone()),
        None => Line::raw(text::NONE),
    }
}

/// The total time once finished, the time so far while running; as wide as the widest
/// (`12.5s…`), so the column does not shift as a running request's time ticks.
fn took_cell<'a>(r: &RequestView, paint: &Paint) -> Line<'a> {
    let took = match (r.total_ms, paint.view.dash.now) {
        (Some(ms), _) => text::millis(ms),
        (None, Some(now)) => {
            let ms = u64::try_from((now - r.started_at).num_milliseconds()).unwrap_or(0);
            format!("{}…", text::millis(ms))
        }
        (None, None) => text::NONE.to_string(),
    };
    Line::raw(format!("{took:>6}"))
}
