//! The event log: one line per event, newest at the bottom, following the newest unless scrolled
//! up (`ui.log_scroll`), and filtered by provider and type (`ui.log_filter`, shown in the title).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{Paint, text};
use crate::console::dashboard::{LogFilter, LogLine};
use crate::console::theme::Theme;
use crate::console::ui::Focus;

/// Wide enough for the longest event type (`request_finished`).
const KIND_WIDTH: usize = 16;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let dash = paint.view.dash;
    let filter = &paint.view.ui.log_filter;
    let theme = &paint.theme;
    let mut block = theme.block(title(filter), paint.focused(Focus::Log));
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    let matching = if *filter == LogFilter::default() {
        dash.log.len()
    } else {
        dash.log.iter().filter(|l| filter.shows(l)).count()
    };
    // Scrolling stops at the oldest line rather than running into emptiness.
    let up = paint
        .view
        .ui
        .log_scroll
        .min(matching.saturating_sub(height));
    if up > 0 {
        let position = format!(" ↑ {up} lines up · newest below ");
        block = block.title_bottom(Line::styled(position, theme.muted).right_aligned());
    }
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = dash
        .log
        .iter()
        .rev()
        .filter(|l| filter.shows(l))
        .skip(up)
        .take(height)
        .map(|l| text::fit_line(log_line(l, theme), usize::from(inner.width)))
        .collect();
    if lines.is_empty() {
        let why = if dash.log.is_empty() {
            " no events yet"
        } else {
            " no events match the filter"
        };
        lines.push(Line::styled(why, theme.muted));
    } else if paint.focused(Focus::Log)
        && let Some(bottom) = lines.first_mut()
    {
        // The line Enter opens.
        bottom.style = theme.selected;
    }
    lines.reverse();
    // Newest at the bottom: pad above when there are fewer lines than rows.
    let pad = height.saturating_sub(lines.len());
    let lines = std::iter::repeat_n(Line::default(), pad).chain(lines);
    text::draw_lines(frame, inner, lines);
}

/// `event log`, with the filter in force.
fn title(filter: &LogFilter) -> String {
    let mut title = " event log".to_string();
    if let Some(p) = &filter.provider {
        title.push_str(&format!(" · provider {p}"));
    }
    if let Some(k) = &filter.kind {
        title.push_str(&format!(" · type {k}"));
    }
    title.push(' ');
    title
}

/// Time, type, and the line the dashboard wrote (which names the request and the provider).
fn log_line<'a>(l: &LogLine, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{} ", text::time_of_day(l.at)), theme.muted),
        Span::styled(
            format!("{:<KIND_WIDTH$} ", l.kind),
            kind_style(l.kind, theme),
        ),
        Span::raw(l.text.clone()),
    ])
}

/// Failures in the failure colour, the operator's actions in the operator's (forced) colour.
fn kind_style(kind: &str, theme: &Theme) -> Style {
    match kind {
        "attempt_failed" => theme.failed,
        "breaker_changed" | "provider_flagged" => theme.title,
        "operator_action" => theme.state(crate::engine::breaker::BreakerState::ForcedOpen),
        _ => theme.muted,
    }
}
