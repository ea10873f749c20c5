//! Reading the program's TOML files (the config, scenarios): durations, and errors that say where.
//!
//! A leaf: it knows nothing of what the files configure. An error names its place as
//! `file:line:column: message` ([`ConfigError`]); toml reports a problem by its byte offset, and
//! [`locate`] turns an offset into the name of the field written there, or a field's path into
//! where it is written.

mod duration;
pub mod locate;

use std::fmt;
use std::path::PathBuf;

pub use duration::{Dur, MAX_DURATION, OptionalDur, duration_text, parse_duration};

/// A problem in a file (the config, a scenario): where it is, and what to do.
///
/// Shown as `file:line:column: message`, leaving out the parts it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl ConfigError {
    /// A problem the message places by itself (a file that cannot be read).
    pub fn new(message: String) -> ConfigError {
        ConfigError {
            file: None,
            line: None,
            column: None,
            message,
        }
    }

    /// A problem in `origin`, nowhere in particular within it.
    pub fn in_file(origin: &str, message: String) -> ConfigError {
        ConfigError {
            file: Some(PathBuf::from(origin)),
            ..ConfigError::new(message)
        }
    }

    /// A problem at byte `offset` of `text`, which came from `origin`.
    pub fn at(text: &str, origin: &str, offset: usize, message: String) -> ConfigError {
        let (line, column) = line_col(text, offset);
        ConfigError {
            line: Some(line),
            column: Some(column),
            ..ConfigError::in_file(origin, message)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(file) = &self.file else {
            return f.write_str(&self.message);
        };
        write!(f, "{}", file.display())?;
        for n in [self.line, self.column].into_iter().flatten() {
            write!(f, ":{n}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A toml error at its place, its message naming the field written where toml found the problem
/// (`origin:line:column: field: message`).
pub fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end();
    let Some(span) = e.span() else {
        return ConfigError::in_file(origin, message.to_string());
    };
    let message = match locate::field_at(text, span.start) {
        Some(field) => format!("{field}: {message}"),
        None => message.to_string(),
    };
    ConfigError::at(text, origin, span.start, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_shows_the_parts_of_its_place_it_knows() {
        let text = "a = 1\nb = é2\n";
        let offset = text.find('2').unwrap_or(0);
        let e = ConfigError::at(text, "my.toml", offset, "bad".to_string());
        assert_eq!((e.line, e.column), (Some(2), Some(6)));
        assert_eq!(e.to_string(), "my.toml:2:6: bad");
        assert_eq!(
            ConfigError::in_file("my.toml", "bad".to_string()).to_string(),
            "my.toml: bad"
        );
        assert_eq!(ConfigError::new("bad".to_string()).to_string(), "bad");
    }
}
