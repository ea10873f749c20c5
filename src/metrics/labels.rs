//! Label values of the one free-form label, the provider's name: the first [`LABEL_VALUES_KEPT`]
//! distinct names, each cut to [`LABEL_VALUE_BYTES`], then [`OTHER`] — so a flood of names cannot
//! make series without limit.

use std::collections::HashSet;

use crate::text::cut;

/// Distinct values kept per free-form label; further ones are pooled as [`OTHER`].
pub const LABEL_VALUES_KEPT: usize = 64;

/// The label value that pools everything past [`LABEL_VALUES_KEPT`].
pub const OTHER: &str = "other";

/// Longest label value kept, in bytes (cut on a character boundary).
pub const LABEL_VALUE_BYTES: usize = 128;

/// The values of one free-form label seen so far.
#[derive(Debug, Clone, Default)]
pub(super) struct Labels {
    kept: HashSet<String>,
}

impl Labels {
    /// The label value for `raw`: itself (cut), or [`OTHER`] once [`LABEL_VALUES_KEPT`] are kept.
    pub(super) fn admit(&mut self, raw: &str) -> String {
        let value = cut(raw, LABEL_VALUE_BYTES);
        if self.kept.contains(value) {
            return value.to_owned();
        }
        if value == OTHER || self.kept.len() >= LABEL_VALUES_KEPT {
            return OTHER.to_owned();
        }
        self.kept.insert(value.to_owned());
        value.to_owned()
    }

    /// Whether `label` is a value of its own (not pooled under [`OTHER`]).
    pub(super) fn is_kept(&self, label: &str) -> bool {
        self.kept.contains(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn values_past_the_cap_are_pooled() {
        let mut labels = Labels::default();
        for i in 0..LABEL_VALUES_KEPT {
            assert_eq!(labels.admit(&format!("p{i}")), format!("p{i}"));
        }
        assert_eq!(labels.admit("late"), OTHER);
        assert_eq!(labels.admit("p0"), "p0");
        assert!(!labels.is_kept(OTHER));
        assert_eq!(labels.admit(&"x".repeat(500)), OTHER);
        let mut fresh = Labels::default();
        assert_eq!(fresh.admit(&"x".repeat(500)).len(), LABEL_VALUE_BYTES);
    }
}
