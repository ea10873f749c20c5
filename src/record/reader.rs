//! Reading a recording back. (A first, minimal version: robust reading is being written.)

use std::io::BufRead;
use std::path::Path;

use super::SessionHeader;
use crate::event::Event;

/// A problem with a recording, saying where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// A recording opened for reading: its header, then its events in order.
pub struct Reader {
    header: SessionHeader,
    lines: std::io::Lines<std::io::BufReader<std::fs::File>>,
    line: u64,
    origin: String,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, RecordError> {
        let origin = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| RecordError(format!("cannot open the recording {origin}: {e}")))?;
        let mut lines = std::io::BufReader::new(file).lines();
        let first = lines
            .next()
            .ok_or_else(|| RecordError(format!("{origin}: the file is empty")))?
            .map_err(|e| RecordError(format!("{origin}:1: {e}")))?;
        let header: SessionHeader = serde_json::from_str(&first).map_err(|e| {
            RecordError(format!(
                "{origin}:1: not a breakerbox recording header: {e}"
            ))
        })?;
        Ok(Reader {
            header,
            lines,
            line: 1,
            origin,
        })
    }

    pub fn header(&self) -> &SessionHeader {
        &self.header
    }
}

impl Iterator for Reader {
    /// An event, or a line that could not be read (its number and why); reading can go on after it.
    type Item = Result<Event, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.lines.next()?;
        self.line += 1;
        Some(match text {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| RecordError(format!("{}:{}: {e}", self.origin, self.line))),
            Err(e) => Err(RecordError(format!("{}:{}: {e}", self.origin, self.line))),
        })
    }
}
