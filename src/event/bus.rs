//! The bus: one broadcast channel that stamps each event with its time and sequence number.

use chrono::{SubsecRound, Utc};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::broadcast;

use super::{Event, EventKind, MAX_DELTA_BYTES, pieces};

/// A broadcast bus of events. Publishing never waits for a consumer: one that falls behind by more
/// than the capacity is told it lagged (tokio's `RecvError::Lagged`) and skips ahead.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    /// The last sequence number given. Held while an event is stamped and sent, so every
    /// subscriber (the recorder, `/events`, the console) receives events in `seq` order, with
    /// timestamps that never go back, however many tasks publish at once.
    seq: Arc<Mutex<u64>>,
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Bus {
            tx,
            seq: Arc::new(Mutex::new(0)),
        }
    }

    /// Stamp the event with the time and the next sequence number and publish it.
    pub fn publish(&self, kind: EventKind) -> Arc<Event> {
        // Nothing panics while it is held; were it poisoned, the count is still right.
        let mut seq = self.seq.lock().unwrap_or_else(PoisonError::into_inner);
        *seq += 1;
        let event = Arc::new(Event {
            // Milliseconds, as events are written: an event in memory equals its recorded form,
            // so a replay folds exactly what the live console folded.
            ts: Utc::now().trunc_subsecs(3),
            seq: *seq,
            kind,
            gateway: None,
        });
        // No receivers is fine: nobody is watching yet.
        let _ = self.tx.send(Arc::clone(&event));
        drop(seq);
        event
    }

    /// Publish a piece of reply as `text_delta` events of at most [`MAX_DELTA_BYTES`] each.
    pub fn publish_text(&self, request_id: &str, provider: &str, text: &str) {
        for piece in pieces(text, MAX_DELTA_BYTES) {
            self.publish(EventKind::TextDelta {
                request_id: request_id.to_string(),
                provider: provider.to_string(),
                text: piece.to_string(),
            });
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(4096)
    }
}
