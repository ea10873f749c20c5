//! One receive loop for every consumer of the bus. A fold sees each event in order and is told when
//! it fell behind (the bus never waits for a slow consumer: it skips ahead and says how far).

use std::sync::Arc;
use tokio::sync::broadcast::{self, Receiver};

use super::Event;

/// What a subscriber gets next: an event, or word that `n` events went by unseen.
#[derive(Debug, Clone)]
pub enum Received {
    Event(Arc<Event>),
    Lagged(u64),
}

/// A consumer of the event stream: the dashboard, the metrics, the recorder, the report, …
pub trait Fold {
    fn apply(&mut self, event: &Event);
    /// `n` events went by unseen.
    fn missed(&mut self, _n: u64) {}
}

/// The next thing from the bus; `None` once it is closed.
pub async fn next(rx: &mut Receiver<Arc<Event>>) -> Option<Received> {
    match rx.recv().await {
        Ok(event) => Some(Received::Event(event)),
        Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Lagged(n)),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// The next thing already on the bus, without waiting; `None` when nothing is (or it is closed).
pub fn try_next(rx: &mut Receiver<Arc<Event>>) -> Option<Received> {
    match rx.try_recv() {
        Ok(event) => Some(Received::Event(event)),
        Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Received::Lagged(n)),
        Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => None,
    }
}

/// Feed every event to `fold` until the bus closes.
pub async fn follow(mut rx: Receiver<Arc<Event>>, fold: &mut impl Fold) {
    while let Some(received) = next(&mut rx).await {
        match received {
            Received::Event(event) => fold.apply(&event),
            Received::Lagged(n) => fold.missed(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Bus, EventKind, OperatorAction};

    #[derive(Default)]
    struct Count {
        seen: Vec<u64>,
        missed: u64,
    }

    impl Fold for Count {
        fn apply(&mut self, event: &Event) {
            self.seen.push(event.seq);
        }
        fn missed(&mut self, n: u64) {
            self.missed += n;
        }
    }

    fn action(bus: &Bus) {
        bus.publish(EventKind::OperatorAction {
            action: OperatorAction::Load,
            provider: None,
            detail: String::new(),
            instance: None,
        });
    }

    #[tokio::test]
    async fn a_fold_sees_every_event_in_order_and_what_it_missed() {
        let bus = Bus::new(2);
        let rx = bus.subscribe();
        for _ in 0..5 {
            action(&bus);
        }
        drop(bus);
        let mut count = Count::default();
        follow(rx, &mut count).await;
        assert_eq!(count.missed, 3);
        assert_eq!(count.seen, [4, 5]);
    }
}
