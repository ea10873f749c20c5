//! Asking before a gateway's console stops it (`serve`): agents are sending their traffic through
//! it, so the popup says what stopping does to them, and how many requests are in flight.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::text::{Line, Span};

use super::{Paint, popup, text};
use crate::console::keys::Action;

const WIDTH: u16 = 60;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let theme = &paint.theme;
    let width = WIDTH.min(area.width.saturating_sub(4));
    let inside = usize::from(width.saturating_sub(4));
    let in_flight = paint.view.dash.totals.in_flight;
    let serving = paint.view.ui.serving.as_deref().unwrap_or("its address");
    let mut lines = vec![Line::styled("Stop the gateway?", theme.title)];
    let effect = match in_flight {
        0 => format!("Nothing is in flight; agents using {serving} will fail to connect."),
        n => format!(
            "{} in flight will be cut, and agents using {serving} will fail to connect.",
            text::plural(n, "request", "requests")
        ),
    };
    lines.extend(text::wrap(&effect, inside).into_iter().map(Line::raw));
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled(paint.view.keys.describe(Action::Confirm), theme.key),
        Span::raw(" stops it, any other key keeps serving"),
    ]));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let inner = popup::open(frame, boxed, popup::block(" quit ", paint));
    text::draw_lines(frame, inner.inner(Margin::new(1, 0)), lines);
}
