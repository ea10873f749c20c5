//! `/events`: the gateway's event stream as server-sent events, for `breakerbox attach` and anything
//! else that wants to watch.
//!
//! A watcher that arrives late still needs the session's providers and every breaker's state, which
//! may have changed hours ago. So [`History`] keeps, from the bus: the `session_started` event, the
//! last `breaker_changed` of each breaker, the last `rate_limits` and `throttle_changed` of each
//! provider (and model), and the most recent [`RECENT`] events. A new watcher gets
//! those (each once, in `seq` order), then live events. The history task appends and fans out under
//! one lock, so a watcher sees no gap and no duplicate between its snapshot and the live stream.
//!
//! Frames: `id: SEQ`, `event: TYPE`, `data: EVENT-JSON`; `: keepalive` every [`KEEPALIVE`]; and
//! `event: lagged` / `data: {"missed": N}` when a watcher was too slow and events were dropped for
//! it (the gateway never waits for a watcher).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::event::{Bus, Event, EventKind, Received};

/// Recent events a new watcher is sent.
pub const RECENT: usize = 10_000;
/// A comment line this often keeps proxies and idle timeouts from closing a quiet stream.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Events queued per watcher before it counts as lagging.
const WATCHER_QUEUE: usize = 4096;

#[derive(Default)]
struct Log {
    session: Option<Arc<Event>>,
    breakers: BTreeMap<String, Arc<Event>>,
    /// By (provider, model, event type).
    limits: BTreeMap<(String, Option<String>, &'static str), Arc<Event>>,
    recent: VecDeque<Arc<Event>>,
}

/// What a late watcher needs, kept from the bus by [`History::follow`].
#[derive(Clone)]
pub struct History {
    log: Arc<Mutex<Log>>,
    fanout: broadcast::Sender<Arc<Event>>,
}

impl History {
    /// Start keeping history from `bus` (call before the first event is published).
    pub fn follow(bus: &Bus) -> History {
        let (fanout, _) = broadcast::channel(WATCHER_QUEUE);
        let history = History {
            log: Arc::default(),
            fanout,
        };
        let mut rx = bus.subscribe();
        let keeper = history.clone();
        tokio::spawn(async move {
            while let Some(received) = crate::event::next(&mut rx).await {
                // Lost to lag: watchers are told by their own receivers when they lag; the
                // history just has a hole, like any ring.
                if let Received::Event(event) = received {
                    keeper.keep(event);
                }
            }
        });
        history
    }

    fn keep(&self, event: Arc<Event>) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        match &event.kind {
            EventKind::SessionStarted { .. } => log.session = Some(Arc::clone(&event)),
            EventKind::BreakerChanged { provider, .. } => {
                log.breakers.insert(provider.clone(), Arc::clone(&event));
            }
            EventKind::RateLimits {
                provider, model, ..
            }
            | EventKind::ThrottleChanged {
                provider, model, ..
            } => {
                let key = (provider.clone(), model.clone(), event.kind.type_name());
                log.limits.insert(key, Arc::clone(&event));
            }
            _ => {}
        }
        if log.recent.len() == RECENT {
            log.recent.pop_front();
        }
        log.recent.push_back(Arc::clone(&event));
        // Nobody watching is fine.
        let _ = self.fanout.send(event);
    }

    /// The snapshot for a new watcher, in `seq` order without duplicates, and its live feed.
    pub fn watch(&self) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.fanout.subscribe();
        let mut events: Vec<Arc<Event>> = log
            .session
            .iter()
            .chain(log.breakers.values())
            .chain(log.limits.values())
            .chain(log.recent.iter())
            .cloned()
            .collect();
        drop(log);
        events.sort_by_key(|e| e.seq);
        events.dedup_by_key(|e| e.seq);
        (events, rx)
    }

    /// The SSE body for a new watcher: a channel of frames fed by a task that ends when the
    /// watcher goes away or `stop` is cancelled (the gateway is shutting down).
    pub fn stream(&self, stop: CancellationToken) -> mpsc::Receiver<Bytes> {
        let (snapshot, mut live) = self.watch();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            for event in snapshot {
                if tx.send(frame(&event)).await.is_err() {
                    return;
                }
            }
            let mut keepalive = tokio::time::interval(KEEPALIVE);
            keepalive.reset();
            loop {
                let bytes = tokio::select! {
                    received = crate::event::next(&mut live) => match received {
                        Some(Received::Event(event)) => frame(&event),
                        Some(Received::Lagged(n)) => lagged(n),
                        None => return,
                    },
                    _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
                    () = tx.closed() => return,
                    () = stop.cancelled() => return,
                };
                if tx.send(bytes).await.is_err() {
                    return;
                }
            }
        });
        rx
    }
}

/// One event as an SSE frame.
pub fn frame(event: &Event) -> Bytes {
    let json = serde_json::to_string(event).unwrap_or_else(|e| {
        // Events are plain data; this cannot happen, but a watcher must not be cut off for it.
        format!(
            "{{\"error\":\"event {} could not be written: {e}\"}}",
            event.seq
        )
    });
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {json}\n\n",
        event.seq,
        event.kind.type_name()
    ))
}

fn lagged(missed: u64) -> Bytes {
    Bytes::from(format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Mode;

    fn breaker(bus: &Bus, provider: &str, to: &str) {
        bus.publish(EventKind::BreakerChanged {
            provider: provider.into(),
            model: None,
            from: crate::event::BreakerState::Closed,
            to: to.parse().expect("a name in the vocabulary"),
            reason: "test".into(),
            recovery_ms: None,
            instance: None,
        });
    }

    #[tokio::test]
    async fn a_late_watcher_gets_the_session_every_breaker_and_then_live_events() {
        let bus = Bus::new(1 << 16);
        let history = History::follow(&bus);
        bus.publish(EventKind::SessionStarted {
            format_version: 1,
            mode: Mode::Serve,
            providers: vec![],
            breaker_threshold: None,
            breaker_counts: None,
            settings: None,
            pools: Vec::new(),
        });
        breaker(&bus, "anthropic", "open");
        bus.publish(EventKind::ThrottleChanged {
            provider: "openai".into(),
            model: None,
            throttled: true,
            dimension: None,
            remaining: Some(0),
            limit: None,
            reset_ms: Some(60_000),
            reason: "requests 0 left, resets in 1m0s".into(),
        });
        // Push the early events out of the recent ring.
        let mut last_published = 0;
        for i in 0..RECENT + 5 {
            last_published = bus
                .publish(EventKind::OperatorAction {
                    action: crate::event::OperatorAction::Load,
                    provider: None,
                    detail: i.to_string(),
                    instance: None,
                })
                .seq;
        }
        // Until the keeper has taken them all in (it runs when this task yields): no wall-clock
        // wait, which a loaded machine can outlast.
        let (snapshot, mut live) = loop {
            let (snapshot, live) = history.watch();
            if snapshot.last().map(|e| e.seq) == Some(last_published) {
                break (snapshot, live);
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(snapshot[0].kind.type_name(), "session_started");
        assert_eq!(snapshot[1].kind.type_name(), "breaker_changed");
        assert_eq!(snapshot[2].kind.type_name(), "throttle_changed");
        assert_eq!(snapshot.len(), 3 + RECENT);
        assert!(snapshot.windows(2).all(|w| w[0].seq < w[1].seq));
        let last = snapshot.last().unwrap().seq;
        breaker(&bus, "openai", "half_open");
        let next = live.recv().await.unwrap();
        assert_eq!(next.seq, last + 1, "no gap and no duplicate at the seam");
    }

    #[test]
    fn frames_name_the_event_and_carry_it_whole() {
        let bus = Bus::new(8);
        let event = bus.publish(EventKind::OperatorAction {
            action: crate::event::OperatorAction::Trip,
            provider: Some("anthropic".into()),
            detail: "line one\nline two".into(),
            instance: None,
        });
        let text = String::from_utf8(frame(&event).to_vec()).unwrap();
        assert!(text.starts_with("id: 1\nevent: operator_action\ndata: {"));
        assert!(text.ends_with("}\n\n"));
        assert_eq!(text.matches('\n').count(), 4, "the JSON stays on one line");
        let data = text.lines().nth(2).unwrap().strip_prefix("data: ").unwrap();
        let back: Event = serde_json::from_str(data).unwrap();
        assert_eq!(back, *event);
    }
}
