//! Reading a recording back: streamed line by line (never the whole file), with memory bounded even
//! on a single enormous line, and every problem reported with the file and line number.
//!
//! The header (line 1) must be right or nothing is read: a file of another format or a newer major
//! version would otherwise be misread. After it, a bad line is an `Err` item naming the line and the
//! iterator goes on, so a caller can warn and skip (or stop, where skipping would mislead).

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{FORMAT, RECORDING_VERSION, SessionHeader};
use crate::event::Event;

/// A problem with a recording, saying where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

pub use super::MAX_LINE;

/// Warnings kept in full (the count goes on): a file of garbage must not fill memory with them.
const MAX_KEPT_WARNINGS: usize = 1000;

/// How far a line too long to hold is skipped looking for its end. A crash can leave a long run
/// of zeros in a file, worth skipping; an input with no line breaks at all (`/dev/zero`) is not a
/// recording, and reading it to its end would never end.
const MAX_SKIP: u64 = 64 * 1024 * 1024;

/// Unreadable lines in a row after which the input is taken not to be a recording (an endless
/// stream of anything else must end too); a good line starts the count again.
const MAX_BAD_RUN: u64 = 10_000;

/// A recording opened for reading: its header, then its events in order.
pub struct Reader {
    header: SessionHeader,
    input: Box<dyn BufRead + Send>,
    /// The number of the last line read (1 is the header).
    line: u64,
    origin: String,
    buf: Vec<u8>,
    warnings: Vec<String>,
    warning_count: u64,
    /// Unreadable lines since the last event.
    bad_run: u64,
    /// Why reading stopped before the end of the input, if it did.
    stopped: Option<String>,
    done: bool,
}

/// One line as read.
enum Line {
    /// The text without its `\n` (and `\r`); `terminated` is false for a last line with no newline.
    Text {
        terminated: bool,
    },
    /// Longer than [`MAX_LINE`]: skipped to its end without being held. `len` is its length.
    TooLong {
        len: u64,
    },
    /// Longer than [`MAX_SKIP`] (or, for the header, than [`MAX_LINE`]): not skipped to its end.
    Endless,
    Eof,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, RecordError> {
        let origin = path.display().to_string();
        if path.is_dir() {
            return Err(RecordError(format!(
                "{origin} is a directory; give the path of a recording (a .jsonl file)"
            )));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| RecordError(format!("cannot open the recording {origin}: {e}")))?;
        Reader::from_reader(BufReader::with_capacity(64 * 1024, file), &origin)
    }

    /// Read a recording from any byte stream; `origin` names it in messages.
    pub fn from_reader(
        input: impl BufRead + Send + 'static,
        origin: &str,
    ) -> Result<Reader, RecordError> {
        let mut reader = Reader {
            header: placeholder_header(),
            input: Box::new(input),
            line: 0,
            origin: origin.to_string(),
            buf: Vec::new(),
            warnings: Vec::new(),
            warning_count: 0,
            bad_run: 0,
            stopped: None,
            done: false,
        };
        reader.header = reader.read_header()?;
        Ok(reader)
    }

    pub fn header(&self) -> &SessionHeader {
        &self.header
    }

    /// The number of the last line read (1 is the header).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Every line skipped so far, with its number and why (the first thousand; see
    /// [`Reader::warning_count`] for the total).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// How many lines were skipped so far.
    pub fn warning_count(&self) -> u64 {
        self.warning_count
    }

    /// Why reading stopped before the end of the input (it is not a recording past some line), if
    /// it did. The last item read was the same message as an `Err`.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    fn not_ours(&self, why: &str) -> RecordError {
        RecordError(format!(
            "{}:1: not a breakerbox recording (line 1 should be its header, a JSON object with \"format\": \"{FORMAT}\"; {why})",
            self.origin
        ))
    }

    fn read_header(&mut self) -> Result<SessionHeader, RecordError> {
        let origin = self.origin.clone();
        let terminated = match self.read_line(MAX_LINE as u64) {
            Err(e) => return Err(RecordError(format!("cannot read {origin}: {e}"))),
            Ok(Line::Endless) => {
                return Err(self.not_ours(&format!(
                    "its first {} MiB hold no line break",
                    MAX_LINE / (1024 * 1024)
                )));
            }
            Ok(Line::Eof) => {
                return Err(RecordError(format!(
                    "{origin}: the file is empty; not a recording"
                )));
            }
            Ok(Line::TooLong { len }) => {
                return Err(self.not_ours(&format!("its first line is {len} bytes long")));
            }
            Ok(Line::Text { terminated }) => terminated,
        };
        let Ok(text) = std::str::from_utf8(&self.buf) else {
            return Err(self.not_ours("it is not text"));
        };
        // A byte-order mark from an editor is harmless.
        let text = text.trim_start_matches('\u{feff}').trim();
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) if !terminated && text.contains(FORMAT) => {
                return Err(RecordError(format!(
                    "{origin}:1: the header is incomplete (the recording was cut off before its first event)"
                )));
            }
            Err(e) => return Err(self.not_ours(&format!("it is not JSON: {e}"))),
        };
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(self.not_ours(&format!("this file's format is \"{other}\"")));
            }
            None => return Err(self.not_ours("it has no \"format\"")),
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v > u64::from(RECORDING_VERSION) => {
                return Err(RecordError(format!(
                    "{origin}: recorded by a newer breakerbox (format version {v}); this one reads version {RECORDING_VERSION} — upgrade breakerbox"
                )));
            }
            Some(v) if v >= 1 => {}
            _ => {
                return Err(RecordError(format!(
                    "{origin}:1: the header's \"format_version\" is missing or invalid (this breakerbox reads version {RECORDING_VERSION})"
                )));
            }
        }
        serde_json::from_value(value)
            .map_err(|e| RecordError(format!("{origin}:1: the header is invalid: {e}")))
    }

    /// Read the next line into `self.buf`, holding at most [`MAX_LINE`] bytes of it and reading at
    /// most `give_up` bytes of it.
    fn read_line(&mut self, give_up: u64) -> std::io::Result<Line> {
        self.buf.clear();
        let mut len: u64 = 0;
        let mut too_long = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                if len == 0 {
                    return Ok(Line::Eof);
                }
                self.line += 1;
                return Ok(if too_long {
                    Line::TooLong { len }
                } else {
                    Line::Text { terminated: false }
                });
            }
            let (take, end) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                if self.buf.len() + take > MAX_LINE {
                    too_long = true;
                    // Give the memory back: this line will not be parsed.
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(&chunk[..take]);
                }
            }
            len += take as u64;
            self.input.consume(if end { take + 1 } else { take });
            if !end && len > give_up {
                self.line += 1;
                return Ok(Line::Endless);
            }
            if end {
                self.line += 1;
                if too_long {
                    return Ok(Line::TooLong { len });
                }
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                return Ok(Line::Text { terminated: true });
            }
        }
    }

    /// Stop reading: the input is not a recording past this point.
    fn stop(&mut self, message: String) -> RecordError {
        self.done = true;
        self.stopped = Some(message.clone());
        self.warn(message)
    }

    fn warn(&mut self, message: String) -> RecordError {
        self.bad_run += 1;
        self.warning_count += 1;
        if self.warnings.len() < MAX_KEPT_WARNINGS {
            self.warnings.push(message.clone());
        }
        RecordError(message)
    }
}

impl Iterator for Reader {
    /// An event, or a line that could not be read (its number and why); reading can go on after it.
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.bad_run >= MAX_BAD_RUN {
                let message = format!(
                    "{}:{}: the last {MAX_BAD_RUN} lines were not events: this is not a recording past here; stopped reading",
                    self.origin, self.line
                );
                return Some(Err(self.stop(message)));
            }
            let terminated = match self.read_line(MAX_SKIP) {
                Ok(Line::Endless) => {
                    let message = format!(
                        "{}:{}: over {} MiB without a line break: this is not a recording past here (an endless input such as /dev/zero?); stopped reading",
                        self.origin,
                        self.line,
                        MAX_SKIP / (1024 * 1024)
                    );
                    return Some(Err(self.stop(message)));
                }
                Ok(Line::Eof) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    // An I/O error is not a bad line: more reads would fail the same way.
                    self.done = true;
                    let message = format!("{}:{}: cannot read: {e}", self.origin, self.line + 1);
                    return Some(Err(self.warn(message)));
                }
                Ok(Line::TooLong { len }) => {
                    let message = format!(
                        "{}:{}: the line is {len} bytes long, over the {} MiB limit for one event; skipped",
                        self.origin,
                        self.line,
                        MAX_LINE / (1024 * 1024)
                    );
                    return Some(Err(self.warn(message)));
                }
                Ok(Line::Text { terminated }) => terminated,
            };
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                // A blank line (an editor's extra newline) carries nothing; not worth a warning.
                continue;
            }
            let parsed = match std::str::from_utf8(&self.buf) {
                Err(_) => Err("not valid UTF-8 text".to_string()),
                Ok(text) => serde_json::from_str::<Event>(text)
                    .map_err(|e| format!("not a valid event: {e}")),
            };
            return Some(match parsed {
                Ok(event) => {
                    self.bad_run = 0;
                    Ok(event)
                }
                // Only the very end of a file can be torn by a crash: say so rather than "invalid".
                Err(_) if !terminated => {
                    let message = format!(
                        "{}:{}: the last line is incomplete (the recording was cut off); skipped",
                        self.origin, self.line
                    );
                    Err(self.warn(message))
                }
                Err(why) => {
                    let message = format!("{}:{}: {why}; skipped", self.origin, self.line);
                    Err(self.warn(message))
                }
            });
        }
    }
}

/// The whole of a (small) recording: its header, its readable events, and a warning per skipped line.
pub fn read_events(path: &Path) -> Result<(SessionHeader, Vec<Event>, Vec<String>), RecordError> {
    let mut reader = Reader::open(path)?;
    // The errors are kept as the reader's warnings.
    let events: Vec<Event> = reader.by_ref().flatten().collect();
    let header = reader.header().clone();
    Ok((header, events, reader.warnings().to_vec()))
}

/// Stands in until the real header is read in `from_reader` (which fails rather than keep it).
fn placeholder_header() -> SessionHeader {
    SessionHeader {
        format: FORMAT.to_string(),
        format_version: RECORDING_VERSION,
        breakerbox_version: String::new(),
        started_at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
        mode: crate::event::Mode::Replay,
        providers: Vec::new(),
        config: serde_json::Value::Null,
        redacted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> Result<Reader, RecordError> {
        Reader::from_reader(std::io::Cursor::new(text.to_vec()), "t.jsonl")
    }

    const HEADER: &str = r#"{"format":"breakerbox-session","format_version":1,"breakerbox_version":"0","started_at":"2026-01-01T00:00:00Z","mode":"demo","providers":[]}"#;
    const EVENT: &str = r#"{"ts":"2026-01-01T00:00:00.000Z","seq":1,"type":"operator_action","action":"load","detail":""}"#;

    /// `x\n` forever.
    struct LinesOfX;

    impl std::io::Read for LinesOfX {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = if i % 2 == 0 { b'x' } else { b'\n' };
            }
            Ok(buf.len() & !1)
        }
    }

    fn after_header(rest: impl std::io::Read + Send + 'static) -> Reader {
        let input =
            std::io::Read::chain(std::io::Cursor::new(format!("{HEADER}\n{EVENT}\n")), rest);
        Reader::from_reader(BufReader::new(input), "t.jsonl")
            .map_err(|e| e.0)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_endless_input_is_refused_at_its_first_line() {
        let zeros = BufReader::new(std::io::repeat(0));
        let Err(e) = Reader::from_reader(zeros, "/dev/zero") else {
            panic!("read a header from zeros")
        };
        assert!(e.0.contains("not a breakerbox recording"), "{e}");
        assert!(e.0.contains("no line break"), "{e}");
    }

    #[test]
    fn an_endless_line_after_the_header_stops_reading_with_a_reason() {
        let mut r = after_header(std::io::repeat(0));
        assert!(
            matches!(r.next(), Some(Ok(_))),
            "the event before the zeros"
        );
        let Some(Err(e)) = r.next() else {
            panic!("no error for an endless line")
        };
        assert!(
            e.0.contains("t.jsonl:3:") && e.0.contains("stopped reading"),
            "{e}"
        );
        assert!(r.next().is_none());
        assert_eq!(r.stopped(), Some(e.0.as_str()));
        assert!(r.buf.capacity() <= MAX_LINE, "the endless line was held");
    }

    #[test]
    fn endless_garbage_lines_stop_reading_and_good_lines_reset_the_count() {
        // Garbage in runs just short of the limit, each followed by an event: read to the end.
        let run = format!("{}{EVENT}\n", "x\n".repeat(MAX_BAD_RUN as usize - 1));
        let mut r = after_header(std::io::Cursor::new(run.repeat(3)));
        let events = r.by_ref().filter(Result::is_ok).count();
        assert_eq!(events, 4);
        assert!(r.stopped().is_none());
        // An endless run of it stops.
        let mut r = after_header(LinesOfX);
        let read = r.by_ref().count() as u64;
        assert_eq!(
            read,
            1 + MAX_BAD_RUN + 1,
            "the event, the bad lines, the reason"
        );
        let why = r.stopped().unwrap_or_default();
        assert!(why.contains("10000 lines were not events"), "{why}");
    }

    #[test]
    fn a_long_line_is_skipped_without_being_held() {
        let header = r#"{"format":"breakerbox-session","format_version":1,"breakerbox_version":"0","started_at":"2026-01-01T00:00:00Z","mode":"demo","providers":[]}"#;
        let event = r#"{"ts":"2026-01-01T00:00:00.000Z","seq":1,"type":"operator_action","action":"load","detail":""}"#;
        let mut text = format!("{header}\n").into_bytes();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        text.push(b'\n');
        text.extend_from_slice(event.as_bytes());
        text.push(b'\n');
        let mut r = read(&text)
            .map_err(|e| e.0)
            .unwrap_or_else(|e| panic!("{e}"));
        let first = r.next();
        assert!(
            matches!(&first, Some(Err(e)) if e.0.contains("t.jsonl:2:")),
            "{first:?}"
        );
        assert!(r.buf.capacity() <= MAX_LINE, "the long line was held");
        assert!(matches!(r.next(), Some(Ok(_))));
        assert!(r.next().is_none());
        assert_eq!(r.warning_count(), 1);
    }

    #[test]
    fn an_event_with_a_value_outside_the_vocabulary_is_skipped_and_said() {
        let header = r#"{"format":"breakerbox-session","format_version":1,"breakerbox_version":"0","started_at":"2026-01-01T00:00:00Z","mode":"demo","providers":[]}"#;
        let sideways = r#"{"ts":"2026-01-01T00:00:00.000Z","seq":1,"type":"breaker_changed","provider":"a","from":"closed","to":"sideways","reason":"?"}"#;
        let text = format!("{header}\n{sideways}\n{EVENT}\n");
        let mut r = read(text.as_bytes())
            .map_err(|e| e.0)
            .unwrap_or_else(|e| panic!("{e}"));
        let first = r.next();
        assert!(
            matches!(&first, Some(Err(e)) if e.0.contains("t.jsonl:2:") && e.0.contains("sideways")),
            "{first:?}"
        );
        assert!(matches!(r.next(), Some(Ok(_))), "the next event is read");
        assert!(r.next().is_none());
    }
}
