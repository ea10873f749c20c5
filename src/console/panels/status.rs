//! The status bar: the keys that work here and now (built from the bindings, so a rebound key
//! shows as rebound), the least useful dropped first on a narrow terminal, and the last action's
//! result on the right.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::{Paint, text};
use crate::console::keys::{Action, Bindings};
use crate::console::ui::{Focus, Overlay};
use crate::engine::breaker::BreakerState;

const GAP: &str = "  ";

/// One key hint; the highest `rank` goes first when the bar is too narrow.
struct Hint {
    keys: String,
    label: &'static str,
    rank: u8,
}

fn hint(keys: String, label: &'static str, rank: u8) -> Hint {
    Hint { keys, label, rank }
}

/// Two actions that go together (up and down) as one hint, by their first keys: `↑↓ select`.
fn pair(keys: &Bindings, a: Action, b: Action, label: &'static str, rank: u8) -> Hint {
    let first = |action| keys.keys(action).first().map(ToString::to_string);
    let joined = match (first(a), first(b)) {
        (Some(a), Some(b)) if a.chars().count() == 1 && b.chars().count() == 1 => a + &b,
        (Some(a), Some(b)) => format!("{a} {b}"),
        (a, b) => a.or(b).unwrap_or_default(),
    };
    hint(joined, label, rank)
}

fn one(keys: &Bindings, action: Action, rank: u8) -> Hint {
    hint(keys.describe(action), action.label(), rank)
}

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint) {
    if let Some(search) = &paint.view.ui.search {
        return draw_search(frame, area, paint, search);
    }
    let flash = paint.view.ui.flash.as_deref().unwrap_or("");
    let flash = text::fit(flash, usize::from(area.width) / 2);
    let room = usize::from(area.width).saturating_sub(text::width(&flash) + GAP.len());
    let mut hints = hints(paint);
    let mut line = hints_line(&hints, paint);
    while line.width() > room {
        let Some(worst) = hints.iter().map(|h| h.rank).max() else {
            break;
        };
        if let Some(at) = hints.iter().rposition(|h| h.rank == worst) {
            hints.remove(at);
        }
        line = hints_line(&hints, paint);
    }
    frame.render_widget(line, area);
    // Styled as a span, not as the line: a line's style would cover the whole bar.
    let flash = Line::from(Span::styled(format!("{flash} "), paint.theme.title)).right_aligned();
    frame.render_widget(flash, area);
}

/// The search being typed, as `/text▏`, with its keys on the right.
fn draw_search(frame: &mut Frame, area: Rect, paint: &Paint, search: &str) {
    let keys = hints_line(&hints(paint), paint).right_aligned();
    let room = usize::from(area.width).saturating_sub(keys.width() + 4);
    let typed = text::fit(search, room);
    let line = Line::from(vec![
        Span::styled(" /", paint.theme.key),
        Span::raw(typed.into_owned()),
        Span::styled("▏", paint.theme.key),
    ]);
    frame.render_widget(line, area);
    frame.render_widget(keys, area);
}

fn hints_line<'a>(hints: &[Hint], paint: &Paint) -> Line<'a> {
    let mut spans = Vec::with_capacity(hints.len() * 3);
    for h in hints {
        spans.push(Span::raw(if spans.is_empty() { " " } else { GAP }));
        spans.push(Span::styled(h.keys.clone(), paint.theme.key));
        spans.push(Span::styled(format!(" {}", h.label), paint.theme.muted));
    }
    Line::from(spans)
}

fn hints(paint: &Paint) -> Vec<Hint> {
    let keys = paint.view.keys;
    let ui = paint.view.ui;
    let s = |text: &str| text.to_string();
    match &ui.overlay {
        Some(Overlay::Help { .. }) => vec![
            hint(s("Esc"), "close", 0),
            pair(keys, Action::Up, Action::Down, "scroll", 1),
            pair(keys, Action::PageUp, Action::PageDown, "page", 2),
        ],
        Some(Overlay::ConfirmQuit) => vec![
            hint(keys.describe(Action::Confirm), "stop the gateway", 0),
            hint(s("any other key"), "keep serving", 0),
        ],
        Some(Overlay::Confirm { .. }) => vec![
            one(keys, Action::Confirm, 0),
            hint(s("any other key"), "cancel", 0),
        ],
        Some(Overlay::Detail { .. }) => vec![
            hint(s("Esc"), "back", 0),
            pair(keys, Action::Up, Action::Down, "scroll", 1),
            pair(keys, Action::PageUp, Action::PageDown, "page", 2),
            one(keys, Action::Copy, 0),
        ],
        Some(Overlay::FaultPicker { .. } | Overlay::LogFilter { .. }) => vec![
            pair(keys, Action::Up, Action::Down, "select", 0),
            hint(s("Enter"), "apply", 0),
            hint(s("Esc"), "cancel", 0),
        ],
        None if ui.search.is_some() => vec![
            hint(s("Enter"), "keep the search", 0),
            hint(s("Esc"), "clear it", 0),
        ],
        None if paint.view.facts.replay.is_some() => replay_hints(paint),
        None if ui.focus == Focus::Prompt => vec![
            hint(s("Enter"), "send", 0),
            hint(s("Alt-Enter"), "newline", 0),
            hint(s("Esc"), "leave", 0),
        ],
        None => main_hints(paint),
    }
}

/// A replay's keys: its player's, and the few of the panels' that mean something there.
fn replay_hints(paint: &Paint) -> Vec<Hint> {
    let keys = paint.view.keys;
    let paused = paint.view.facts.replay.as_ref().is_some_and(|r| r.paused);
    let both = |action: Action, rank| hint(keys.describe_pair(action), action.label(), rank);
    vec![
        hint(
            keys.describe(Action::ReplayPause),
            if paused { "play" } else { "pause" },
            0,
        ),
        one(keys, Action::ReplayStep, 1),
        both(Action::ReplayBack, 1),
        both(Action::ReplayPrevious, 1),
        both(Action::ReplayPreviousBreaker, 2),
        both(Action::ReplaySlower, 2),
        one(keys, Action::Quit, 0),
        one(keys, Action::Help, 3),
        one(keys, Action::FilterLog, 4),
    ]
}

/// The panels' keys: the focused panel's own, the breaker's that make sense for its state, the rest.
fn main_hints(paint: &Paint) -> Vec<Hint> {
    let keys = paint.view.keys;
    let ui = paint.view.ui;
    let mut hints = vec![one(keys, Action::Help, 0), one(keys, Action::Quit, 0)];
    hints.extend(match ui.focus {
        Focus::Providers | Focus::Requests | Focus::Errors => vec![
            pair(keys, Action::Up, Action::Down, "select", 1),
            pair(keys, Action::Top, Action::Bottom, "top/bottom", 7),
        ],
        Focus::Reply | Focus::Log | Focus::Prompt => vec![
            pair(keys, Action::Up, Action::Down, "scroll", 1),
            pair(keys, Action::PageUp, Action::PageDown, "page", 4),
        ],
    });
    if ui.focus != Focus::Prompt {
        hints.push(one(keys, Action::Open, 3));
    }
    let selected = paint.view.dash.providers.get(ui.selected_provider);
    if let Some(p) = selected {
        // An action that would change nothing (tripping a tripped breaker) is not offered.
        let actions = [
            (Action::Trip, p.breaker != BreakerState::ForcedOpen, 1),
            (
                Action::ForceClosed,
                p.breaker != BreakerState::ForcedClosed,
                3,
            ),
            (Action::Reset, p.breaker != BreakerState::Closed, 1),
            (Action::PickFault, paint.view.facts.faults, 3),
        ];
        for (action, meaningful, rank) in actions {
            if meaningful {
                hints.push(one(keys, action, rank));
            }
        }
    }
    hints.push(one(keys, Action::FocusNext, 2));
    hints.push(one(keys, Action::Prompt, 1));
    hints.push(hint(
        keys.describe(Action::Freeze),
        if paint.view.facts.frozen {
            "unfreeze"
        } else {
            "freeze"
        },
        4,
    ));
    hints.push(one(
        keys,
        Action::FilterLog,
        if ui.focus == Focus::Log { 1 } else { 5 },
    ));
    hints.push(one(
        keys,
        Action::Search,
        if ui.focus == Focus::Log { 1 } else { 7 },
    ));
    hints.push(hint(
        keys.describe(Action::Zoom),
        if ui.zoomed.is_some() {
            "unzoom"
        } else {
            "zoom"
        },
        if ui.zoomed.is_some() { 0 } else { 6 },
    ));
    if let Some(load) = paint.view.facts.load {
        let label = if load.on { "load off" } else { "load on" };
        hints.push(hint(keys.describe(Action::ToggleLoad), label, 5));
        if load.on {
            hints.push(pair(
                keys,
                Action::LoadFaster,
                Action::LoadSlower,
                "rate",
                6,
            ));
        }
    }
    hints
}
