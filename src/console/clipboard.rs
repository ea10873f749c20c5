//! Copying to the clipboard the way that works over SSH and in tmux with `set-clipboard on`: the
//! terminal's OSC 52 sequence (base64 of the text), written to the terminal itself. The text is
//! bounded: terminals drop longer sequences (hterm and tmux take about 100 kB).

use ratatui::crossterm::Command;
use ratatui::crossterm::clipboard::CopyToClipboard;

use crate::text::floor_boundary;

/// The most text one copy carries (its base64 is a third longer).
pub const COPY_BYTES_KEPT: usize = 64 * 1024;

/// What a copy writes to the terminal, and how much of the text it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The OSC 52 sequence.
    pub sequence: String,
    /// Bytes of the text copied; less than the text's when it was cut to `COPY_BYTES_KEPT`.
    pub bytes: usize,
    pub cut: bool,
}

/// The OSC 52 sequence that puts `text` (at most `COPY_BYTES_KEPT` of it, cut on a character
/// boundary) on the system clipboard.
pub fn osc52(text: &str) -> Copy {
    let end = floor_boundary(text, COPY_BYTES_KEPT);
    let kept = text.get(..end).unwrap_or_default();
    let mut sequence = String::with_capacity(kept.len() * 4 / 3 + 16);
    // Writing into a String cannot fail; a failure would leave the sequence empty, copying nothing.
    if CopyToClipboard::to_clipboard_from(kept)
        .write_ansi(&mut sequence)
        .is_err()
    {
        sequence.clear();
    }
    Copy {
        sequence,
        bytes: kept.len(),
        cut: kept.len() < text.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_osc_52_with_base64_and_is_bounded() {
        let c = osc52("hé\n");
        // "hé\n" is 68 c3 a9 0a: base64 aMOpCg==.
        assert_eq!(c.sequence, "\x1b]52;c;aMOpCg==\x1b\\");
        assert_eq!((c.bytes, c.cut), (4, false));
        let long = "é".repeat(COPY_BYTES_KEPT);
        let c = osc52(&long);
        assert!(c.cut && c.bytes <= COPY_BYTES_KEPT && c.bytes.is_multiple_of(2));
        assert!(c.sequence.len() < COPY_BYTES_KEPT * 4 / 3 + 16);
    }
}
