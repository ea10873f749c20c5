//! Server-sent events decoding: a push-style [`Decoder`] and a [`SseStream`] adapter over a byte stream.
//!
//! Hand-written so that one event's size is bounded (`max_event_bytes`) and so that a bad event is an
//! error item rather than the end of decoding. Follows the WHATWG rules that providers rely on, with one
//! deliberate difference: an event still pending at end of input is delivered, because real streams
//! (Anthropic's recorded fixtures among them) end without the final blank line.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use memchr::{memchr, memchr2};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the event had a non-empty one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Why one event could not be decoded. Decoding goes on with the next event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE event exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("SSE event is not valid UTF-8")]
    InvalidUtf8,
    /// A binary event-stream message (Bedrock's framing, read into the same events) that could
    /// not be read.
    #[error("{0}")]
    EventStream(String),
}

pub type SseItem = Result<SseEvent, SseError>;

/// Incremental SSE decoder: feed it bytes as they arrive, in any split, and it yields complete events.
#[derive(Debug)]
pub struct Decoder {
    max_event_bytes: usize,
    /// The current line, when it spans chunks (lines inside one chunk are not copied).
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event: Vec<u8>,
    /// The last chunk ended in `\r`: a `\n` at the start of the next one completes that line ending.
    after_cr: bool,
    /// Discarding an oversized event up to the next blank line, buffering nothing.
    skipping: bool,
    /// While skipping: whether the current line has any bytes (so is not the blank line we wait for).
    skipped_line_has_bytes: bool,
    comments: u64,
}

impl Decoder {
    pub fn new(max_event_bytes: usize) -> Self {
        Decoder {
            max_event_bytes,
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event: Vec::new(),
            after_cr: false,
            skipping: false,
            skipped_line_has_bytes: false,
            comments: 0,
        }
    }

    /// Comment lines (`:` first, the keepalives some proxies send) seen so far. They are not events.
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// Bytes held for the event being decoded; never more than `max_event_bytes`.
    pub fn buffered_len(&self) -> usize {
        self.line.len() + self.data.len() + self.event.len()
    }

    /// Decode a chunk, appending every event it completes to `out`.
    pub fn feed<O: Extend<SseItem>>(&mut self, mut chunk: &[u8], out: &mut O) {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while let Some(i) = memchr2(b'\n', b'\r', chunk) {
            self.end_line(&chunk[..i], out);
            let ending = chunk[i];
            chunk = &chunk[i + 1..];
            if ending == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.partial_line(chunk, out);
    }

    /// End of input: deliver the pending event, if any, even without its closing blank line.
    pub fn finish<O: Extend<SseItem>>(&mut self, out: &mut O) {
        if !self.skipping {
            let line = std::mem::take(&mut self.line);
            if !line.is_empty() {
                self.line(&line, out);
            }
            self.dispatch(out);
        }
        *self = Decoder {
            comments: self.comments,
            ..Decoder::new(self.max_event_bytes)
        };
    }

    fn fits(&self, more: usize) -> bool {
        self.buffered_len() + more <= self.max_event_bytes
    }

    /// Bytes of a line whose ending has not arrived yet.
    fn partial_line<O: Extend<SseItem>>(&mut self, bytes: &[u8], out: &mut O) {
        if bytes.is_empty() {
            return;
        }
        if !self.skipping && !self.fits(bytes.len()) {
            self.overflow(out);
        }
        if self.skipping {
            self.skipped_line_has_bytes = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// The rest of a line, whose ending has just been seen.
    fn end_line<O: Extend<SseItem>>(&mut self, tail: &[u8], out: &mut O) {
        if self.skipping {
            if !self.skipped_line_has_bytes && tail.is_empty() {
                self.skipping = false;
            }
            self.skipped_line_has_bytes = false;
            return;
        }
        if !self.fits(tail.len()) {
            // This line is not blank, so skipping resumes cleanly at the next line.
            self.overflow(out);
            return;
        }
        if self.line.is_empty() {
            self.line(tail, out);
        } else {
            let mut line = std::mem::take(&mut self.line);
            line.extend_from_slice(tail);
            self.line(&line, out);
            line.clear();
            self.line = line;
        }
    }

    fn overflow<O: Extend<SseItem>>(&mut self, out: &mut O) {
        out.extend(Some(Err(SseError::TooLarge {
            limit: self.max_event_bytes,
        })));
        self.line.clear();
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.skipping = true;
    }

    /// One complete line, without its ending.
    fn line<O: Extend<SseItem>>(&mut self, line: &[u8], out: &mut O) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match memchr(b':', line) {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &line[..0]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.has_data = true;
                self.data.extend_from_slice(value);
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            // `id`, `retry` and unknown fields mean nothing to a model stream.
            _ => {}
        }
    }

    fn dispatch<O: Extend<SseItem>>(&mut self, out: &mut O) {
        let data = std::mem::take(&mut self.data);
        let event = std::mem::take(&mut self.event);
        if !std::mem::replace(&mut self.has_data, false) {
            return;
        }
        let item = match (String::from_utf8(data), String::from_utf8(event)) {
            (Ok(data), Ok(event)) => Ok(SseEvent {
                event: (!event.is_empty()).then_some(event),
                data,
            }),
            _ => Err(SseError::InvalidUtf8),
        };
        out.extend(Some(item));
    }
}

/// An error from a [`SseStream`]: one event was bad, or the underlying byte stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SseStreamError<E> {
    #[error(transparent)]
    Decode(SseError),
    #[error(transparent)]
    Body(E),
}

/// SSE events from a stream of byte chunks. A body error ends the stream after it is yielded; a decode
/// error does not.
pub struct SseStream<S> {
    body: S,
    decoder: Decoder,
    ready: VecDeque<SseItem>,
    ended: bool,
}

impl<S> SseStream<S> {
    pub fn new(body: S, max_event_bytes: usize) -> Self {
        SseStream {
            body,
            decoder: Decoder::new(max_event_bytes),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }
}

impl<S, E> Stream for SseStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<SseEvent, SseStreamError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(item.map_err(SseStreamError::Decode)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match ready!(this.body.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => this.decoder.feed(&chunk, &mut this.ready),
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(SseStreamError::Body(e))));
                }
                None => {
                    this.ended = true;
                    this.decoder.finish(&mut this.ready);
                }
            }
        }
    }
}
