//! The event log: one line per event, newest at the bottom, following the newest unless scrolled
//! up (`ui.log_at`, an anchor: a scrolled log stays put as lines arrive, and says how many are
//! newer), and filtered by provider, type and searched text (`ui.log_filter`, in the title).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{Paint, text};
use crate::console::dashboard::{LogFilter, LogLine};
use crate::console::keys::Action;
use crate::console::theme::Theme;
use crate::console::ui::Focus;

/// Wide enough for the longest event type (`request_finished`).
const KIND_WIDTH: usize = 16;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let dash = paint.view.dash;
    let ui = paint.view.ui;
    let filter = &ui.log_filter;
    let theme = &paint.theme;
    let mut block = theme.block(title(filter), paint.focused(Focus::Log));
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    let window = dash.log_window(filter, ui.log_at, height);
    if window.newer > 0 {
        let keys = paint.view.keys.describe(Action::Bottom);
        let position = format!(" ↓ {} newer · {keys} or Esc follows ", window.newer);
        block = block.title_bottom(Line::styled(position, theme.title).right_aligned());
    }
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = window
        .lines
        .iter()
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
    if let Some(t) = &filter.text {
        title.push_str(&format!(" · /{}", text::fit(t, 30)));
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

/// Failures in the failure colour, the operator's actions in the operator's (forced) colour;
/// what changes a provider (its breaker, a flag, a scenario's fault) stands out.
fn kind_style(kind: &str, theme: &Theme) -> Style {
    match kind {
        "attempt_failed" => theme.failed,
        "breaker_changed" | "provider_flagged" | "fault_changed" => theme.title,
        "operator_action" => theme.state(crate::engine::breaker::BreakerState::ForcedOpen),
        _ => theme.muted,
    }
}
