//! Text helpers: cutting on character boundaries (what `str::floor_char_boundary` does, on the Rust
//! this crate supports), and making text from providers safe for a terminal and one line long.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// The largest character boundary of `text` at or before `i`.
pub fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest character boundary of `text` at or after `i`.
pub fn ceil_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    text.get(..floor_boundary(text, max)).unwrap_or("")
}

/// `s` on one line (control characters, escapes included, become spaces), at most `max_chars`.
pub fn one_line(s: &str, max_chars: usize) -> String {
    if s.len() <= max_chars && !s.contains(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let _ = write!(out, "{}", OneLine(s, max_chars));
    out
}

/// Displays a string as `one_line` does, without allocating.
pub struct OneLine<'a>(pub &'a str, pub usize);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OneLine(s, max) = *self;
        if s.len() <= max && !s.contains(char::is_control) {
            return f.write_str(s);
        }
        for (i, c) in s.chars().enumerate() {
            if i == max {
                return f.write_char('…');
            }
            f.write_char(shown(c))?;
        }
        Ok(())
    }
}

/// A character as a terminal may be given it: a control character (ESC and so every escape
/// sequence, BEL, CR, backspace, the C1 controls) becomes a space, so text from a provider can
/// neither drive the terminal nor forge a line.
pub fn shown(c: char) -> char {
    if c.is_control() { ' ' } else { c }
}

/// `s` for a terminal, as the event log and a headless gateway's log show text: control characters
/// become spaces (see [`shown`]); newlines stay when `lines` is true (a reply), else they go too
/// (a log line stays one line). Unchanged, and not copied, when there is nothing to escape.
pub fn printable(s: &str, lines: bool) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() && !(lines && c == '\n');
    if !s.contains(escaped) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if escaped(c) { shown(c) } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_never_split_a_character() {
        let s = "aé€😀";
        for i in 0..=s.len() + 2 {
            assert!(s.is_char_boundary(floor_boundary(s, i)));
            assert!(s.is_char_boundary(ceil_boundary(s, i)));
            assert!(cut(s, i).len() <= i);
        }
        assert_eq!(cut(s, 2), "a");
        assert_eq!(ceil_boundary(s, 2), 3);
        assert_eq!(cut(s, 100), s);
    }
}
