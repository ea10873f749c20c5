//! The bounded buffers everything the dashboard keeps lives in: a hostile or endless stream of
//! events must not grow it without limit, so each list drops its oldest entry to make room and each
//! string is cut to a length.

use std::collections::VecDeque;

/// Push `item`, dropping the oldest entries to keep at most `kept` (at least one).
pub(super) fn push_ring<T>(ring: &mut VecDeque<T>, item: T, kept: usize) {
    while ring.len() >= kept.max(1) {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// Push `item` onto a short list, dropping its oldest entry once it holds `kept`.
pub(super) fn push_capped<T>(list: &mut Vec<T>, item: T, kept: usize) {
    if list.len() >= kept.max(1) {
        list.remove(0);
    }
    list.push(item);
}

/// At most `max_chars` characters of `s`, marked with `…` when cut.
pub(super) fn bounded(s: &str, max_chars: usize) -> String {
    if s.len() <= max_chars {
        return s.to_string();
    }
    match s.char_indices().nth(max_chars) {
        None => s.to_string(),
        Some((cut, _)) => {
            let mut out = s.get(..cut).unwrap_or_default().to_string();
            out.push('…');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_and_lists_keep_the_newest() {
        let mut ring = VecDeque::new();
        for i in 0..10 {
            push_ring(&mut ring, i, 3);
        }
        assert_eq!(ring, [7, 8, 9]);
        // Nothing kept is taken as one.
        push_ring(&mut ring, 10, 0);
        assert_eq!(ring, [10]);

        let mut list = Vec::new();
        for i in 0..10 {
            push_capped(&mut list, i, 4);
        }
        assert_eq!(list, [6, 7, 8, 9]);
    }

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("é€😀x", 2), "é€…");
        assert_eq!(bounded("éé", 2), "éé");
    }
}
