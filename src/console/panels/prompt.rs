//! The prompt: the ratatui-textarea widget in a frame whose title says the keys that work in it.

use ratatui::Frame;
use ratatui::layout::Rect;

use super::Paint;
use crate::console::keys::Action;
use crate::console::ui::Focus;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    let focused = paint.focused(Focus::Prompt);
    let title = if focused {
        " prompt · Enter send · Alt-Enter newline · Esc leave ".to_string()
    } else {
        format!(
            " prompt · {} to type ",
            paint.view.keys.describe(Action::Prompt)
        )
    };
    let block = paint.theme.block(title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(paint.view.prompt, inner);
}
