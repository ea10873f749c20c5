//! Who a request's reply is coming from, for a caller that says so alongside it (the gateway's
//! `x-breakerbox-provider` and `x-breakerbox-attempts` response headers).
//!
//! The run notes each attempt before it makes it, and the attempt whose events go to the caller
//! before the first of them is sent, so a caller that reads [`Progress`] on receiving an event
//! sees the attempt that event came from; after `Done` (or the error) it sees the final count.

use std::sync::{Arc, Mutex};

/// A request's progress, shared between its run and its caller. Cheap to clone.
#[derive(Clone, Default)]
pub struct Progress(Arc<Mutex<Answering>>);

/// Where a request stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answering {
    /// Attempts made so far (hedges and retries included; a target skipped is not one).
    pub attempts: u32,
    /// The provider whose events the caller is getting (the last to start sending them).
    pub provider: Option<String>,
    /// The model asked of it (the provider's own name for it comes in its `MessageStart`).
    pub model: Option<String>,
}

impl Progress {
    /// Where the request stands now.
    pub fn now(&self) -> Answering {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn attempts(&self, attempts: u32) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).attempts = attempts;
    }

    /// `provider`'s events (asked for `model`) go to the caller from now on.
    pub(super) fn forwarding(&self, provider: &str, model: &str) {
        let mut answering = self.0.lock().unwrap_or_else(|e| e.into_inner());
        answering.provider = Some(provider.to_string());
        answering.model = (!model.is_empty()).then(|| model.to_string());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::engine::chain::{HedgeTrigger, MidStreamPolicy};
    use crate::engine::failover::{FailoverEngine, RequestMeta};
    use crate::engine::testkit::*;
    use crate::event::{EventKind, Source};
    use crate::provider::{ErrorClass, Phase, Request, StreamEvent};
    use futures::StreamExt;
    use std::time::Duration;

    /// Send `meta`'s request; the progress when the first text arrived and at the end, and
    /// whether the request ended well.
    async fn watch(engine: &FailoverEngine, meta: RequestMeta) -> (Answering, Answering, bool) {
        let (_, mut stream, progress) = engine.send_watched(Request::prompt("hi"), meta);
        let mut at_text = None;
        let mut ok = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(StreamEvent::TextDelta { .. }) if at_text.is_none() => {
                    at_text = Some(progress.now());
                }
                Ok(StreamEvent::Done { .. }) => ok = true,
                _ => {}
            }
        }
        (at_text.unwrap_or_default(), progress.now(), ok)
    }

    #[tokio::test(start_paused = true)]
    async fn it_names_the_provider_whose_events_the_caller_gets_and_counts_every_attempt() {
        let a = Scripted::new(
            "a",
            vec![
                vec![fail("a", ErrorClass::ServerError, Phase::Headers)],
                vec![fail("a", ErrorClass::ServerError, Phase::Headers)],
            ],
        );
        let b = Scripted::new("b", vec![reply(&["from ", "b"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        let (at_text, end, ok) = watch(&e, RequestMeta::new(Source::Ask)).await;
        let want = Answering {
            attempts: 3,
            provider: Some("b".into()),
            model: Some("claude-sonnet-5-5".into()),
        };
        assert!(ok);
        assert_eq!(at_text, want, "as the first text arrives");
        assert_eq!(end, want);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hedge_that_wins_is_the_one_named() {
        let a = Scripted::new(
            "a",
            vec![{
                let mut slow = vec![Play::Wait(Duration::from_secs(5))];
                slow.extend(reply(&["late"]));
                slow
            }],
        );
        let b = Scripted::new("b", vec![reply(&["quick"])]);
        let mut hedged = settings(MidStreamPolicy::Restart);
        hedged.hedge = Some(HedgeTrigger::After(Duration::from_millis(100)));
        let e = engine(vec![target(&a, false), target(&b, false)], hedged);
        let (at_text, end, ok) = watch(&e, RequestMeta::new(Source::Ask)).await;
        assert!(ok);
        assert_eq!(at_text.provider.as_deref(), Some("b"));
        assert_eq!((at_text.attempts, end.attempts), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn with_failover_off_the_request_stays_on_its_first_target_retries_included() {
        let a = Scripted::new(
            "a",
            vec![
                vec![fail("a", ErrorClass::ServerError, Phase::Headers)],
                vec![fail("a", ErrorClass::ServerError, Phase::Headers)],
            ],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        let mut rx = e.shared().bus.subscribe();
        let meta = RequestMeta {
            failover: false,
            chain_name: Some("chain".into()),
            ..RequestMeta::new(Source::Gateway)
        };
        let (_, end, ok) = watch(&e, meta).await;
        assert!(!ok);
        assert_eq!(
            (a.calls(), b.calls()),
            (2, 0),
            "its retry, and no other target"
        );
        assert_eq!(end.attempts, 2);
        assert_eq!(end.provider.as_deref(), Some("a"));
        let started = std::iter::from_fn(|| rx.try_recv().ok())
            .find(|e| matches!(e.kind, EventKind::RequestStarted { .. }))
            .unwrap();
        match &started.kind {
            EventKind::RequestStarted {
                chain,
                chain_name,
                failover,
                ..
            } => {
                assert_eq!(chain, &["a"]);
                assert_eq!(chain_name.as_deref(), Some("chain"));
                assert_eq!(*failover, Some(false));
            }
            other => panic!("{other:?}"),
        }
    }
}
