//! Drawing: a pure function of the dashboard, the UI state, the key bindings and the prompt.
//! (Being written.)

use ratatui::Frame;
use ratatui_textarea::TextArea;

use super::dashboard::Dashboard;
use super::keys::Bindings;
use super::ui::Ui;

/// Everything a frame is drawn from.
pub struct View<'a> {
    pub dash: &'a Dashboard,
    pub ui: &'a Ui,
    pub keys: &'a Bindings,
    pub prompt: &'a TextArea<'static>,
}

/// Draw the whole screen.
pub fn draw(_frame: &mut Frame, _view: &View) {}
