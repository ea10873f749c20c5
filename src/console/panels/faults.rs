//! Picking a fault for a simulated provider: each choice with what it does, the one in force
//! marked `●`, the selected one highlighted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Row, Table, TableState};

use super::{Paint, popup, text};
use crate::console::ui::FAULT_CHOICES;

const SELECTED: &str = "▶ ";

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, provider: &str, selected: usize) {
    let theme = &paint.theme;
    let in_force = paint
        .view
        .dash
        .provider(provider)
        .and_then(|p| p.fault.as_deref())
        .unwrap_or("none");
    let fault_width = FAULT_CHOICES
        .iter()
        .map(|(f, _)| text::width(f))
        .max()
        .unwrap_or(0);
    let about_width = FAULT_CHOICES
        .iter()
        .map(|(_, a)| text::width(a))
        .max()
        .unwrap_or(0);
    let rows = FAULT_CHOICES.iter().map(|(fault, about)| {
        let mark = if *fault == in_force { "●" } else { " " };
        Row::new([
            Line::styled(mark, theme.title),
            Line::styled(fault.to_string(), theme.title),
            Line::raw(about.to_string()),
        ])
    });
    let widths = [
        ratatui::layout::Constraint::Length(1),
        ratatui::layout::Constraint::Length(u16::try_from(fault_width).unwrap_or(u16::MAX)),
        ratatui::layout::Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .column_spacing(2)
        .highlight_symbol(SELECTED)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(theme.selected);
    let width = u16::try_from(fault_width + about_width + 2 + 1 + 2 + 2 + 4).unwrap_or(u16::MAX);
    let height = u16::try_from(FAULT_CHOICES.len() + 2).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let title = Line::from(vec![
        Span::raw(" fault for "),
        Span::styled(provider.to_string(), theme.title),
        Span::raw(" (simulated) · ● in force "),
    ]);
    let inner = popup::open(frame, boxed, popup::block(title, paint));
    let inner = inner.inner(ratatui::layout::Margin::new(1, 0));
    let mut state =
        TableState::default().with_selected(Some(selected.min(FAULT_CHOICES.len() - 1)));
    frame.render_stateful_widget(table, inner, &mut state);
}
