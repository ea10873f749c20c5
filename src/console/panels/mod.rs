//! Drawing: a pure function of the dashboard, the UI state, the key bindings and the prompt. No
//! clock and no I/O: time is `Dashboard::now`, so a replay draws exactly what was seen live.
//!
//! One file per panel; `layout.rs` decides where each goes and which ones a small terminal leaves
//! out; `theme.rs` holds the styles.

mod columns;
mod confirm;
mod cost;
mod detail;
mod errors;
mod faults;
mod filter;
mod header;
mod help;
mod latency;
mod log;
mod popup;
mod prompt;
mod providers;
#[cfg(test)]
pub(crate) use providers::next_text;
mod quit;
mod replay_bar;
mod reply;
mod requests;
mod status;
mod text;
mod timeline;
mod too_small;
mod window;

pub use detail::{copy_text, max_scroll};
pub use errors::classes as error_classes;
pub use requests::selected as selected_request;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui_textarea::TextArea;

use super::dashboard::Dashboard;
use super::keys::Bindings;
use super::layout::{self, Areas, Needs, Screen};
use super::replay::ReplayView;
use super::theme::Theme;
use super::ui::{Attached, Focus, Link, LoadView, Overlay, Ui};

/// Everything a frame is drawn from.
pub struct View<'a> {
    pub dash: &'a Dashboard,
    pub ui: &'a Ui,
    pub keys: &'a Bindings,
    pub prompt: &'a TextArea<'static>,
    pub facts: Facts,
}

/// What a frame shows that neither the dashboard nor the UI state holds, asked of its owner for
/// each frame: the freeze is the app's, the background load the control's, where a replay stands
/// the player's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The display is frozen (data is still collected).
    pub frozen: bool,
    /// `None` where there is no background load (real providers without a demo, a replay, a
    /// console attached to a gateway).
    pub load: Option<LoadView>,
    /// Where a replay stands; `None` when live.
    pub replay: Option<ReplayView>,
    /// The providers can take faults (they are simulated), as the control says.
    pub faults: bool,
}

/// What every panel draws with.
struct Paint<'a> {
    view: &'a View<'a>,
    theme: Theme,
}

impl Paint<'_> {
    fn focused(&self, focus: Focus) -> bool {
        self.view.ui.overlay.is_none() && self.view.ui.focus == focus
    }
}

/// What a frame had room for, that the keys need to know: how far they can move.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drawn {
    /// Rows of the event log (0 when it is not on screen).
    pub log_rows: usize,
    /// How far the reply can scroll.
    pub reply_scroll: usize,
    /// How far the help can scroll.
    pub help_scroll: usize,
}

/// Draw the whole screen.
pub fn draw(frame: &mut Frame, view: &View) -> Drawn {
    let paint = Paint {
        view,
        theme: Theme::new(view.ui.color),
    };
    let area = frame.area();
    let needs = Needs {
        providers: view.dash.providers.len(),
        provider_rows: providers::rows(view.dash),
        prompt_lines: view.prompt.lines().len(),
        focus: view.ui.focus,
        zoomed: view.ui.zoomed,
    };
    let mut drawn = Drawn::default();
    match layout::split(area, needs) {
        Screen::TooSmall => too_small::draw(frame, area, &paint),
        Screen::Panels(areas) => {
            drawn.reply_scroll = panels(frame, &areas, &paint);
            if disconnected(view) {
                grey(frame, &areas);
            }
            drawn.log_rows = areas
                .log
                .map_or(0, |r| usize::from(r.height.saturating_sub(2)));
            drawn.help_scroll = overlay(frame, area, &paint);
        }
    }
    drawn
}

/// An attached console whose gateway went away (over a fleet: every one of them): what it shows
/// is as of then.
fn disconnected(view: &View) -> bool {
    if let Some(fleet) = &view.dash.gateways {
        return fleet.up() == 0
            && fleet
                .members
                .iter()
                .any(|m| matches!(m.link, super::dashboard::MemberLink::Down { .. }));
    }
    matches!(
        view.ui.attached,
        Some(Attached {
            link: Link::Disconnected { .. },
            ..
        })
    )
}

/// Dim every panel but the header and the status bar (which say why, and when the next try
/// is): dim, not dark grey, so it still reads on a dark theme, and without colour too.
fn grey(frame: &mut Frame, areas: &Areas) {
    let dim = Style::new().add_modifier(Modifier::DIM);
    let panels = [
        Some(areas.providers),
        areas.latency,
        areas.timeline,
        areas.errors,
        areas.cost,
        areas.requests,
        areas.reply,
        areas.log,
        Some(areas.prompt),
    ];
    for area in panels.into_iter().flatten() {
        frame.buffer_mut().set_style(area, dim);
    }
}

/// Whether a screen of `area` has room for the errors panel (Tab passes it by where not).
pub fn shows_errors(dash: &Dashboard, area: Rect) -> bool {
    let needs = Needs {
        providers: dash.providers.len(),
        provider_rows: providers::rows(dash),
        prompt_lines: 1,
        focus: Focus::Errors,
        zoomed: None,
    };
    matches!(layout::split(area, needs), Screen::Panels(areas) if areas.errors.is_some())
}

/// A panel's drawing function.
type DrawPanel = fn(&mut Frame, Rect, &Paint);

/// Draw every panel that has a place; how far the reply can scroll.
fn panels(frame: &mut Frame, areas: &Areas, paint: &Paint) -> usize {
    header::draw(frame, areas.header, paint);
    providers::draw(frame, areas.providers, paint);
    let optional: [(Option<Rect>, DrawPanel); 6] = [
        (areas.latency, latency::draw),
        (areas.timeline, timeline::draw),
        (areas.errors, errors::draw),
        (areas.cost, cost::draw),
        (areas.requests, requests::draw),
        (areas.log, log::draw),
    ];
    for (area, draw) in optional {
        if let Some(area) = area {
            draw(frame, area, paint);
        }
    }
    match &paint.view.facts.replay {
        Some(replay) => replay_bar::draw(frame, areas.prompt, paint, replay),
        None => prompt::draw(frame, areas.prompt, paint),
    }
    status::draw(frame, areas.status, paint);
    areas
        .reply
        .map_or(0, |area| reply::draw(frame, area, paint))
}

/// Draw the popup, if one is open; how far the help can scroll.
fn overlay(frame: &mut Frame, area: Rect, paint: &Paint) -> usize {
    match &paint.view.ui.overlay {
        None => {}
        Some(Overlay::Help { scroll }) => return help::draw(frame, area, paint, *scroll),
        Some(Overlay::ConfirmQuit) => quit::draw(frame, area, paint),
        Some(Overlay::Confirm { command }) => confirm::draw(frame, area, paint, command),
        Some(Overlay::FaultPicker { provider, selected }) => {
            faults::draw(frame, area, paint, provider, *selected);
        }
        Some(Overlay::LogFilter { selected }) => filter::draw(frame, area, paint, *selected),
        Some(Overlay::Detail { target, scroll }) => {
            detail::draw(frame, area, paint, target, *scroll);
        }
    }
    0
}
