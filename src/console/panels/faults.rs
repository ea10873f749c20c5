//! Picking a fault for a simulated provider: each choice with what it does, the one in force
//! marked `●` (by its kind when the simulator runs it with other parameters, as a scenario does),
//! the exact fault in force written above the choices, the selected one highlighted.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Row, Table, TableState};

use super::{Paint, popup, text};
use crate::console::ui::{FAULT_CHOICES, fault_choice_in_force};

const SELECTED: &str = "▶ ";

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, provider: &str, selected: usize) {
    let theme = &paint.theme;
    // A simulated provider the session named no fault for started healthy.
    let in_force = paint
        .view
        .dash
        .provider(provider)
        .and_then(|p| p.fault.as_deref())
        .unwrap_or("none");
    let marked = fault_choice_in_force(in_force);
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
    let rows = FAULT_CHOICES.iter().enumerate().map(|(i, (fault, about))| {
        let mark = if marked == Some(i) { "●" } else { " " };
        Row::new([
            Line::styled(mark, theme.title),
            Line::styled(fault.to_string(), theme.title),
            Line::raw(about.to_string()),
        ])
    });
    let widths = [
        Constraint::Length(1),
        Constraint::Length(u16::try_from(fault_width).unwrap_or(u16::MAX)),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .column_spacing(2)
        .highlight_symbol(SELECTED)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(theme.selected);
    let now = now_line(in_force, paint);
    let table_width = fault_width + about_width + 2 + 1 + 2 + 2 + 4;
    let width = u16::try_from(table_width.max(now.width() + 4)).unwrap_or(u16::MAX);
    let height = u16::try_from(FAULT_CHOICES.len() + 3).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let title = Line::from(vec![
        Span::raw(" fault for "),
        Span::styled(provider.to_string(), theme.title),
        Span::raw(" (simulated) · ● in force "),
    ]);
    let inner = popup::open(frame, boxed, popup::block(title, paint));
    let inner = inner.inner(Margin::new(1, 0));
    let [now_area, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(text::fit_line(now, usize::from(now_area.width)), now_area);
    let mut state =
        TableState::default().with_selected(Some(selected.min(FAULT_CHOICES.len() - 1)));
    frame.render_stateful_widget(table, table_area, &mut state);
}

/// `now: rate_limit:retry_after=5s,p=0.8`: the simulator's fault as it is, parameters and all.
fn now_line<'a>(in_force: &str, paint: &Paint) -> Line<'a> {
    Line::from(vec![
        Span::raw("now: "),
        Span::styled(in_force.to_string(), paint.theme.title),
    ])
}
