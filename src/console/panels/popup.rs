//! What the popups share: a centred box over the panels, cleared first so nothing shows through.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear};

use super::Paint;

/// A `width`×`height` box centred in `area`, shrunk to fit it.
pub fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

/// A popup's frame: drawn as focused, since a popup has the keys while it is open.
pub fn block<'a>(title: impl Into<Line<'a>>, paint: &Paint) -> Block<'a> {
    paint.theme.block(title, true)
}

/// Clear `area`, draw `block` on it and return the inside.
pub fn open(frame: &mut Frame, area: Rect, block: Block) -> Rect {
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    inner
}
