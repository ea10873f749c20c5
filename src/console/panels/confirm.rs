//! Asking before a breaker action: what it will do to which provider, where the breaker is now,
//! and `y` to go ahead.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use super::providers::next_text;
use super::{Paint, popup, text};
use crate::console::theme::state_word;
use crate::console::ui::BreakerAction;

const WIDTH: u16 = 64;

pub fn draw(frame: &mut Frame, area: Rect, paint: &Paint, action: BreakerAction, provider: &str) {
    let theme = &paint.theme;
    let width = WIDTH.min(area.width.saturating_sub(4));
    let inside = usize::from(width.saturating_sub(4));
    let (question, effect) = wording(action, provider);
    let mut lines = vec![Line::styled(question, theme.title)];
    lines.extend(
        text::wrap(&format!("{}: {effect}", action.describe()), inside)
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
            now.push(Span::raw(format!(" · {detail}")));
        }
        lines.push(text::fit_line(Line::from(now), inside));
    }
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("y", theme.key),
        Span::raw(" to confirm, any other key cancels"),
    ]));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let boxed = popup::centred(area, width, height);
    let inner = popup::open(frame, boxed, popup::block(" confirm ", paint));
    let inner = inner.inner(ratatui::layout::Margin::new(1, 0));
    text::draw_lines(frame, inner, lines);
}

/// The question, and what happens after `y`.
fn wording(action: BreakerAction, provider: &str) -> (String, String) {
    match action {
        BreakerAction::Trip => (
            format!("Trip {provider}?"),
            format!("every request skips {provider} until you reset it"),
        ),
        BreakerAction::ForceClosed => (
            format!("Force {provider} closed?"),
            format!("{provider} gets every request and never trips until you reset it"),
        ),
        BreakerAction::Reset => (
            format!("Reset {provider}?"),
            "the breaker goes back to automatic: closed, its counts cleared".to_string(),
        ),
    }
}
