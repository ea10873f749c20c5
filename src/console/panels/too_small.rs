//! Below the smallest layout: say so, and say how big the terminal needs to be.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Text};
use ratatui::widgets::{Paragraph, Wrap};

use super::Paint;
use crate::console::layout::{MIN_HEIGHT, MIN_WIDTH};

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let message = Text::from(vec![
        Line::styled(
            format!("terminal too small: {}×{}", area.width, area.height),
            paint.theme.title,
        ),
        Line::raw(format!("need at least {MIN_WIDTH}×{MIN_HEIGHT}")),
    ])
    .centered();
    let [middle] = Layout::vertical([Constraint::Length(2)])
        .flex(Flex::Center)
        .areas(area);
    frame.render_widget(Paragraph::new(message).wrap(Wrap { trim: true }), middle);
}
