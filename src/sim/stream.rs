//! Plays a stream's frames out over time, with the in-stream faults (stall, cut, error, malformed)
//! at their place. The body is dropped when the client goes away, and its [`Tracker`] with it.

use axum::body::Body;
use bytes::Bytes;
use std::time::Duration;

use super::rng::Rng;
use super::state::Tracker;
use super::wire::{Frame, FrameKind};

/// Something that happens to the stream after some tokens.
pub(crate) enum Disruption {
    /// Silence for a while, then the rest of the stream.
    Stall(Duration),
    /// Abort the connection: hyper drops it without the chunked body's terminating chunk.
    Cut,
    /// Send this instead of the rest, then end the body.
    Replace(Bytes),
}

/// How fast a reply comes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// Before the first event.
    pub first: Duration,
    /// Before each token.
    pub token: Duration,
    /// The fraction by which each delay varies.
    pub jitter: f64,
}

pub(crate) struct StreamPlan {
    pub frames: Vec<Frame>,
    pub pace: Pace,
    pub rng: Rng,
    /// What happens before which frame (see [`position`]).
    pub disruption: Option<(usize, Disruption)>,
}

/// Where a disruption `after` tokens goes: before the next token, or before the closing frames
/// when the content is shorter. So a cut stream never carries its end marker.
pub(crate) fn position(frames: &[Frame], after: u32) -> usize {
    let mut tokens = 0;
    frames
        .iter()
        .position(|f| match f.kind {
            FrameKind::Closing => true,
            FrameKind::Token if tokens == after => true,
            FrameKind::Token => {
                tokens += 1;
                false
            }
            FrameKind::Meta => false,
        })
        .unwrap_or(frames.len())
}

struct Playback {
    plan: StreamPlan,
    next: usize,
    disruption: Option<(usize, Disruption)>,
    ended: bool,
    tracker: Option<Tracker>,
}

impl Playback {
    fn finish(&mut self) {
        self.ended = true;
        if let Some(tracker) = self.tracker.take() {
            tracker.finish(Some(200));
        }
    }

    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.ended {
            return None;
        }
        if self
            .disruption
            .as_ref()
            .is_some_and(|(at, _)| *at == self.next)
            && let Some((_, disruption)) = self.disruption.take()
        {
            match disruption {
                Disruption::Stall(quiet) => tokio::time::sleep(quiet).await,
                Disruption::Cut => {
                    self.finish();
                    return Some(Err(cut().await));
                }
                Disruption::Replace(bytes) => {
                    self.finish();
                    return Some(Ok(bytes));
                }
            }
        }
        let Some(frame) = self.plan.frames.get(self.next) else {
            self.finish();
            return None;
        };
        let pace = self.plan.pace;
        let delay = match frame.kind {
            _ if self.next == 0 => self.plan.rng.jitter(pace.first, pace.jitter),
            FrameKind::Token => self.plan.rng.jitter(pace.token, pace.jitter),
            FrameKind::Meta | FrameKind::Closing => Duration::ZERO,
        };
        let bytes = frame.bytes.clone();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.next += 1;
        Some(Ok(bytes))
    }
}

/// The error that cuts a body. It waits one turn first: hyper flushes what it has buffered while
/// the body is pending, so the client gets the bytes before the cut instead of nothing at all.
pub(crate) async fn cut() -> std::io::Error {
    tokio::task::yield_now().await;
    std::io::Error::other("simulated stream cut")
}

/// The response body for a plan; the request's record is written when it completes.
pub(crate) fn body(mut plan: StreamPlan, mut tracker: Tracker) -> Body {
    tracker.sent_status(200);
    let disruption = plan.disruption.take();
    let playback = Playback {
        plan,
        next: 0,
        disruption,
        ended: false,
        tracker: Some(tracker),
    };
    Body::from_stream(futures::stream::unfold(playback, |mut p| async move {
        let chunk = p.next_chunk().await?;
        Some((chunk, p))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(kinds: &str) -> Vec<Frame> {
        kinds
            .chars()
            .map(|c| {
                let kind = match c {
                    'm' => FrameKind::Meta,
                    't' => FrameKind::Token,
                    _ => FrameKind::Closing,
                };
                Frame::new(kind, Bytes::new())
            })
            .collect()
    }

    #[test]
    fn disruptions_land_after_n_tokens_and_before_the_end() {
        let f = frames("mmtttmmtmcc");
        assert_eq!(position(&f, 0), 2);
        assert_eq!(position(&f, 2), 4);
        assert_eq!(position(&f, 3), 7);
        assert_eq!(position(&f, 4), 9);
        assert_eq!(position(&f, 50), 9);
    }
}
