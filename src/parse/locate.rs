//! Where a key is written in a TOML document, and which key is written where.
//!
//! One mechanism names the place of every config error: toml reports a deserialization error by
//! its byte offset, and [`field_at`] names the field written there; a check that runs after
//! deserialization (two fields together, a list, a name declared twice) names a field by its
//! path, and [`span_of`] finds where it is written.

use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a path into a document: a key of a table, or an element of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> From<&'a str> for Step<'a> {
    fn from(key: &'a str) -> Self {
        Step::Key(key)
    }
}

impl From<usize> for Step<'_> {
    fn from(index: usize) -> Self {
        Step::Index(index)
    }
}

/// The span of the value at `path`, or of its nearest ancestor written in the document (a value
/// left to its default is not); the start of the document when none is.
pub fn span_of(text: &str, path: &[Step<'_>]) -> Range<usize> {
    let Ok(root) = DeTable::parse(text) else {
        return 0..0;
    };
    let mut found = 0..0;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
    for step in path {
        let value = match (*step, table, array) {
            (Step::Key(key), Some(t), _) => {
                t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
            }
            (Step::Index(i), _, Some(a)) => a.get(i),
            _ => None,
        };
        let Some(value) = value else { break };
        found = value.span();
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(a.as_ref())),
            _ => (None, None),
        };
    }
    found
}

/// The dotted name of the field whose key or value is written at `offset`
/// (`breaker.failure_rate`, `sim.providers.jitter`; array elements are not numbered, the line
/// tells which), or `None` outside any key.
pub fn field_at(text: &str, offset: usize) -> Option<String> {
    let root = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    in_table(root.get_ref(), offset, &mut path).then(|| path.join("."))
}

fn in_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, value) in table.iter() {
        path.push(quoted(key.get_ref()));
        if key.span().contains(&offset) || in_value(value, offset, path) {
            return true;
        }
        path.pop();
    }
    false
}

/// Whether `offset` is in `value` (whose key is already on `path`), pushing the keys within it.
/// A table's children are searched even when its own span does not hold them: the span of a
/// `[header]` table is its header.
fn in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<String>) -> bool {
    let inside = match value.get_ref() {
        DeValue::Table(t) => in_table(t, offset, path),
        DeValue::Array(a) => a.iter().any(|v| in_value(v, offset, path)),
        _ => false,
    };
    inside || value.span().contains(&offset)
}

/// A key as TOML writes it in a dotted path: bare when it can be.
pub fn quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[breaker]\nfailure_rate = 2.0\n\n[[sim.providers]]\nname = \"a\"\n\n[[sim.providers]]\nname = \"b\"\njitter = 3\n\n[pricing.\"gpt-4.1\"]\ninput = -1\n";

    fn at(needle: &str) -> usize {
        TEXT.find(needle).unwrap_or(usize::MAX)
    }

    #[test]
    fn names_the_field_written_at_an_offset() {
        assert_eq!(
            field_at(TEXT, at("2.0")).as_deref(),
            Some("breaker.failure_rate")
        );
        assert_eq!(
            field_at(TEXT, at("failure_rate")).as_deref(),
            Some("breaker.failure_rate")
        );
        assert_eq!(
            field_at(TEXT, at("3\n")).as_deref(),
            Some("sim.providers.jitter")
        );
        assert_eq!(
            field_at(TEXT, at("-1")).as_deref(),
            Some("pricing.\"gpt-4.1\".input")
        );
        assert_eq!(field_at(TEXT, at("\n\n")), None);
        assert_eq!(field_at("not = = toml", 0), None);
    }

    #[test]
    fn finds_a_path_or_its_nearest_written_ancestor() {
        let span = span_of(
            TEXT,
            &["sim".into(), "providers".into(), 1.into(), "name".into()],
        );
        assert_eq!(&TEXT[span], "\"b\"");
        let span = span_of(TEXT, &["breaker".into(), "window".into()]);
        assert_eq!(&TEXT[span], "[breaker]");
        assert_eq!(span_of(TEXT, &["retry".into()]), 0..0);
        assert_eq!(span_of("= broken", &["retry".into()]), 0..0);
    }
}
