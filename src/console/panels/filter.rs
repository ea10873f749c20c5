//! Choosing what the event log shows: everything, one provider, or one event type. The choices
//! are `LogFilter::choices`, in the order the key handling walks them, so that
//! `Overlay::LogFilter { selected }` means the same row to both.

use ratatui::Frame;
use ratatui::layout::{Constraint, Margin, Rect};
use ratatui::text::Line;
use ratatui::widgets::{HighlightSpacing, Row, Table, TableState};

use super::{Paint, popup, text};
use crate::console::dashboard::LogFilter;

const SELECTED: &str = "▶ ";

/// Plain text: the selected row's grey background would hide muted grey.
fn label(choice: &LogFilter) -> String {
    match (&choice.provider, &choice.kind) {
        (Some(p), _) => format!("provider {p}"),
        (None, Some(k)) => format!("type     {k}"),
        (None, None) => "every event".to_string(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, selected: usize) {
    let theme = &paint.theme;
    let in_force = &paint.view.ui.log_filter;
    let choices = LogFilter::choices(paint.view.dash);
    let labels: Vec<String> = choices.iter().map(label).collect();
    let widest = labels.iter().map(|l| text::width(l)).max().unwrap_or(0);
    let rows = choices.iter().zip(labels).map(|(choice, label)| {
        let mark = if choice == in_force { "●" } else { " " };
        Row::new([Line::styled(mark, theme.title), Line::raw(label)])
    });
    let table = Table::new(rows, [Constraint::Length(1), Constraint::Fill(1)])
        .column_spacing(1)
        .highlight_symbol(SELECTED)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(theme.selected);
    let title = " filter the event log · ● in force ";
    let width = (widest + 2 + 2 + 4).max(text::width(title) + 2);
    let width = u16::try_from(width).unwrap_or(u16::MAX);
    let height = u16::try_from(choices.len() + 2).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let inner = popup::open(frame, boxed, popup::block(title, paint));
    let selected = selected.min(choices.len().saturating_sub(1));
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, inner.inner(Margin::new(1, 0)), &mut state);
}
