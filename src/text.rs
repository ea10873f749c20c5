//! Cutting text on character boundaries (what `str::floor_char_boundary` does, on the Rust this
//! crate supports).

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
