//! Asking before a breaker action: what it will do to which provider, where the breaker is now,
//! and `y` (the `confirm` binding) to go ahead.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::providers::next_text;
use super::{Paint, popup, text};
use crate::console::keys::Action;
use crate::console::theme::state_word;
use crate::session::Command;

const WIDTH: u16 = 64;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, command: &Command) {
    let theme = &paint.theme;
    let width = WIDTH.min(area.width.saturating_sub(4));
    let inside = usize::from(width.saturating_sub(4));
    let provider = command.provider().unwrap_or_default();
    let (question, effect) = wording(command);
    let mut lines = vec![Line::styled(question, theme.title)];
    let doing = command.breaker_effect().unwrap_or_default();
    lines.extend(
        text::wrap(&format!("{doing}: {effect}"), inside)
            .into_iter()
            .map(Line::raw),
    );
    if let Some(p) = paint.view.dash.provider(provider) {
        let mut now = vec![
            Span::styled("now ", theme.muted),
            Span::styled(state_word(p.breaker), theme.state(p.breaker)),
        ];
        let next = next_text(p, paint.view.dash.now);
        let reason = Some(p.breaker_reason.clone()).filter(|r| !r.is_empty());
        for detail in [next, reason].into_iter().flatten() {
            // The providers table pads a countdown to keep its column; a sentence does not.
            now.push(Span::raw(format!(" · {}", detail.trim_end())));
        }
        lines.push(text::fit_line(Line::from(now), inside));
    }
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled(paint.view.keys.describe(Action::Confirm), theme.key),
        Span::raw(" to confirm, any other key cancels"),
    ]));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let inner = popup::open(frame, boxed, popup::block(" confirm ", paint));
    let inner = inner.inner(ratatui::layout::Margin::new(1, 0));
    text::draw_lines(frame, inner, lines);
}

/// The question, and what happens after `y`.
fn wording(command: &Command) -> (String, String) {
    match command {
        Command::Trip { provider } => (
            format!("Trip {provider}?"),
            format!("every request skips {provider} until you reset it"),
        ),
        Command::ForceClosed { provider } => (
            format!("Force {provider} closed?"),
            format!("{provider} gets every request and never trips until you reset it"),
        ),
        Command::Reset { provider } => (
            format!("Reset {provider}?"),
            "the breaker goes back to automatic: closed, its counts cleared".to_string(),
        ),
        other => (other.summary(), String::new()),
    }
}
