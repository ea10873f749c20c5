//! The console's styles. Colour carries meaning and only meaning: a breaker's state (closed green,
//! half-open yellow, open red, operator-forced magenta), a throttled provider (blue: close to a
//! rate limit, not a breaker state), retryable (yellow) against non-retryable (red)
//! errors, success (green) against failure (red), and focus (cyan). Every one of those is also
//! written as a word or a glyph, so the no-colour theme (`NO_COLOR`, `--no-color`) keeps only bold,
//! reverse and plain text and still reads.
//!
//! Nothing is drawn in dark grey (colour 8, `Color::DarkGray`): it is the background of common dark
//! themes (Solarized dark, many others), so text in it vanishes there. Secondary text is the
//! terminal's own foreground, not bold; the selection is reversed and bold, which reads on any
//! theme, beside a `▶` marker.

use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType};

use crate::engine::breaker::BreakerState;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Theme {
    pub color: bool,
    /// Secondary text: labels, units, column headings (the terminal's foreground, not bold).
    pub muted: Style,
    pub border: Style,
    pub border_focused: Style,
    pub title: Style,
    /// The selected row of a list or table.
    pub selected: Style,
    /// Something the operator must not miss: the mode, FROZEN.
    pub badge: Style,
    pub warning: Style,
    pub ok: Style,
    pub failed: Style,
    pub retryable: Style,
    pub fatal: Style,
    /// A key in the status bar and the help.
    pub key: Style,
    /// A provider throttled by its rate limits (written `THROTTLED` too).
    pub throttled: Style,
    /// The mark of a failed attempt in the latency chart (a glyph that reads without colour).
    pub fail_glyph: &'static str,
}

impl Theme {
    pub fn new(color: bool) -> Theme {
        if color {
            Theme::colored()
        } else {
            Theme::plain()
        }
    }

    fn colored() -> Theme {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        Theme {
            color: true,
            muted: Style::new(),
            border: Style::new(),
            border_focused: bold.fg(Color::Cyan),
            title: bold,
            selected: bold.add_modifier(Modifier::REVERSED),
            badge: bold.add_modifier(Modifier::REVERSED),
            warning: bold.fg(Color::Red),
            ok: Style::new().fg(Color::Green),
            failed: Style::new().fg(Color::Red),
            retryable: Style::new().fg(Color::Yellow),
            fatal: Style::new().fg(Color::Red),
            key: bold.fg(Color::Cyan),
            throttled: bold.fg(Color::LightBlue),
            fail_glyph: "✗",
        }
    }

    fn plain() -> Theme {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        Theme {
            color: false,
            muted: Style::new(),
            border: Style::new(),
            border_focused: bold,
            title: bold,
            selected: bold.add_modifier(Modifier::REVERSED),
            badge: bold.add_modifier(Modifier::REVERSED),
            warning: bold,
            ok: Style::new(),
            failed: bold,
            retryable: Style::new(),
            fatal: bold,
            key: bold,
            throttled: bold,
            fail_glyph: "x",
        }
    }

    /// A breaker state's colour; without colour, anything but closed is bold.
    pub fn state(&self, state: BreakerState) -> Style {
        if !self.color {
            return match state {
                BreakerState::Closed => Style::new(),
                _ => Style::new().add_modifier(Modifier::BOLD),
            };
        }
        let fg = match state {
            BreakerState::Closed => Color::Green,
            BreakerState::HalfOpen => Color::Yellow,
            BreakerState::Open => Color::Red,
            BreakerState::ForcedOpen | BreakerState::ForcedClosed => Color::Magenta,
        };
        let style = Style::new().fg(fg);
        match state {
            BreakerState::Closed => style,
            _ => style.add_modifier(Modifier::BOLD),
        }
    }

    pub fn error(&self, retryable: bool) -> Style {
        if retryable {
            self.retryable
        } else {
            self.fatal
        }
    }

    /// A panel's frame: a thick border and a marked title when it has the keys, so focus shows
    /// without colour too.
    pub fn block<'a>(&self, title: impl Into<ratatui::text::Line<'a>>, focused: bool) -> Block<'a> {
        let (border_type, border_style) = if focused {
            (BorderType::Thick, self.border_focused)
        } else {
            (BorderType::Rounded, self.border)
        };
        Block::bordered()
            .border_type(border_type)
            .border_style(border_style)
            .title(title.into().style(self.title))
    }
}

/// A breaker state as the operator reads it: quiet when healthy, loud when not, and an operator's
/// override spelled out.
pub fn state_word(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "OPEN",
        BreakerState::HalfOpen => "HALF-OPEN",
        BreakerState::ForcedOpen => "FORCED OPEN",
        BreakerState::ForcedClosed => "FORCED CLOSED",
    }
}

/// One timeline cell per state; forced spans get their own glyphs so they stand out without colour.
pub fn state_glyph(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "━",
        BreakerState::HalfOpen => "▒",
        BreakerState::Open => "█",
        BreakerState::ForcedOpen => "╳",
        BreakerState::ForcedClosed => "═",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_theme_has_no_colour() {
        let t = Theme::new(false);
        let styles = [
            t.muted,
            t.border,
            t.border_focused,
            t.title,
            t.selected,
            t.badge,
            t.warning,
            t.ok,
            t.failed,
            t.retryable,
            t.fatal,
            t.key,
            t.throttled,
        ];
        for s in styles {
            assert_eq!((s.fg, s.bg), (None, None), "{s:?}");
        }
        for state in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
            BreakerState::ForcedOpen,
            BreakerState::ForcedClosed,
        ] {
            assert_eq!(t.state(state).fg, None);
        }
    }
}
