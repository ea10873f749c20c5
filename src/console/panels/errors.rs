//! Failures by class and provider. Retryable classes (worth failing over for) come first, marked
//! `↻` in yellow; the rest (a bad request fails everywhere) follow, marked `⊘` in red; the last
//! message of each class says what the provider actually answered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, Table, TableState};

use super::columns::{self, Column};
use super::providers::retry_mark;
use super::{Paint, text};
use crate::console::dashboard::Dashboard;
use crate::console::ui::Focus;
use crate::provider::ErrorClass;

/// One class across providers.
struct ClassRow<'d> {
    class: ErrorClass,
    retryable: bool,
    counts: Vec<u64>,
    last: Option<(&'d str, &'d str, DateTime<Utc>)>,
}

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let theme = &paint.theme;
    let legend = Line::from(vec![
        Span::raw(" "),
        Span::styled(format!("{} retryable", retry_mark(true)), theme.retryable),
        Span::raw(" · "),
        Span::styled(format!("{} not retryable", retry_mark(false)), theme.fatal),
        Span::raw(" "),
    ]);
    let focused = paint.focused(Focus::Errors);
    let block = theme
        .block(" errors ", focused)
        .title_bottom(legend.right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let rows = class_rows(paint);
    if rows.is_empty() {
        let none = Line::styled(" no errors", theme.muted);
        frame.render_widget(none, inner);
        return;
    }
    // Focused (Tab), the selected class is marked for Enter; otherwise the table is as it was.
    let marker = if focused { SELECTED_WIDTH } else { 0 };
    let fitted = columns::fit(
        table_columns(&rows, paint),
        inner.width.saturating_sub(marker),
        theme.muted.patch(theme.title),
    );
    let table = Table::new(fitted.rows, fitted.widths)
        .header(fitted.header)
        .column_spacing(columns::SPACING);
    if !focused {
        frame.render_widget(table, inner);
        return;
    }
    let table = table
        .highlight_symbol(SELECTED)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(theme.selected);
    let selected = paint.view.ui.selected_error.min(rows.len() - 1);
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, inner, &mut state);
}

const SELECTED: &str = "▶ ";
const SELECTED_WIDTH: u16 = 2;

/// The classes the panel lists, in its order (what `ui.selected_error` indexes).
pub fn classes(dash: &Dashboard) -> Vec<ErrorClass> {
    let mut seen: Vec<(bool, ErrorClass)> = dash
        .errors
        .iter()
        .filter(|((provider, _), _)| dash.providers.iter().any(|p| &p.name == provider))
        .map(|((_, class), count)| (!count.retryable, *class))
        .collect();
    seen.sort();
    seen.dedup_by_key(|(_, class)| *class);
    seen.into_iter().map(|(_, class)| class).collect()
}

/// Classes seen, retryable ones first, each group in the classes' fixed order so rows stay put
/// while counts change.
fn class_rows<'d>(paint: &Paint<'d>) -> Vec<ClassRow<'d>> {
    let dash = paint.view.dash;
    let mut by_class: BTreeMap<(bool, ErrorClass), ClassRow<'d>> = BTreeMap::new();
    for ((provider, class), count) in &dash.errors {
        let Some(column) = dash.providers.iter().position(|p| &p.name == provider) else {
            continue;
        };
        let row = by_class
            .entry((!count.retryable, *class))
            .or_insert_with(|| ClassRow {
                class: *class,
                retryable: count.retryable,
                counts: vec![0; dash.providers.len()],
                last: None,
            });
        row.counts[column] += count.count;
        if row.last.is_none_or(|(_, _, at)| count.last_at > at) {
            row.last = Some((provider, &count.last_message, count.last_at));
        }
    }
    by_class.into_values().collect()
}

fn table_columns<'a>(rows: &[ClassRow], paint: &Paint) -> Vec<Column<'a>> {
    let theme = &paint.theme;
    let mut class = Column::new("class", 0);
    let mut per_provider: Vec<Column<'a>> = paint
        .view
        .dash
        .providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Column::new(p.name.clone(), 1 + u8::try_from(i).unwrap_or(u8::MAX - 2)).right()
        })
        .collect();
    let mut last = Column::new("last message", u8::MAX).fill();
    for row in rows {
        let style = theme.error(row.retryable);
        class.push(Span::styled(
            format!("{} {}", retry_mark(row.retryable), row.class.as_str()),
            style,
        ));
        for (column, n) in per_provider.iter_mut().zip(&row.counts) {
            column.push(if *n == 0 {
                Span::styled("·", theme.muted)
            } else {
                Span::styled(n.to_string(), style)
            });
        }
        last.push(match row.last {
            Some((provider, message, at)) => Line::from(vec![
                Span::styled(format!("{} ", text::time_of_day(at)), theme.muted),
                Span::styled(format!("{provider}: "), theme.title),
                Span::raw(message.to_string()),
            ]),
            None => Line::default(),
        });
    }
    let mut columns = vec![class];
    columns.append(&mut per_provider);
    columns.push(last);
    columns
}
