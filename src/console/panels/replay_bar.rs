//! In a replay, where the prompt would be: the position in the recording, its length, the speed,
//! and a progress bar (the replay is read-only, so there is nothing to type).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::{Paint, text};
use crate::console::replay::ReplayView;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, replay: &ReplayView) {
    let theme = &paint.theme;
    let state = if replay.paused { "paused" } else { "playing" };
    let title = format!(
        " replay · {} · {state} {} ",
        replay.file,
        replay.speed.label()
    );
    let block = theme.block(
        text::fit(&title, usize::from(area.width).saturating_sub(4)),
        false,
    );
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
    let bar_width = usize::from(inner.width).saturating_sub(text::width(&label) + 1);
    let done = match replay.end {
        Some(end) if end > replay.start => {
            let whole = (end - replay.start).num_milliseconds().max(1) as f64;
            let part = (replay.position - replay.start).num_milliseconds().max(0) as f64;
            ((part / whole).min(1.0) * bar_width as f64).round() as usize
        }
        _ => 0,
    };
    let line = Line::from(vec![
        Span::styled("━".repeat(done), theme.ok),
        Span::styled("─".repeat(bar_width - done), theme.muted),
        Span::styled(label, theme.title),
    ]);
    frame.render_widget(line, inner);
}
