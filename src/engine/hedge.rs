//! Hedging: when a target stays silent past the hedge delay (fixed, or a percentile of its recent
//! first-event latencies), the next target is started too. Both attempts hold their events back; the
//! first healthy first event wins and reaches the caller, the other attempt is cancelled and paid for.

use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::attempt::{self, AttemptContext, AttemptReport};
use crate::engine::breaker::{CallOutcome, Permit};
use crate::engine::chain::{HedgeTrigger, Target};
use crate::engine::classify::Failover;
use crate::engine::failover::OUT_CAPACITY;
use crate::engine::run::{Run, TargetEnd, TargetRun, record};
use crate::engine::tally::Tally;
use crate::event::EventKind;
use crate::provider::{ErrorClass, ProviderError, Request, StreamEvent};

/// The hedge of an attempt: when to start it, and on which target.
pub(super) struct Hedge<'t> {
    trigger: HedgeTrigger,
    next: &'t Target,
}

impl Run {
    /// The hedge of this attempt on `at.target`, if one is due. Only a fresh first try is hedged: a
    /// retry or a continuation (`prefilled`) has its reasons to wait, and the all-open fallback
    /// has no next target.
    pub(super) fn hedge_due<'t>(&self, at: &TargetRun<'t>, prefilled: bool) -> Option<Hedge<'t>> {
        match (self.engine.settings.hedge, at.later.first()) {
            (Some(trigger), Some(next)) if at.tries == 0 && !prefilled && !at.bypass => {
                Some(Hedge { trigger, next })
            }
            _ => None,
        }
    }

    /// An attempt on `primary` hedged by `hedge`. `Ok`: the primary's report and its `permit`;
    /// `Err`: the hedge won, and this is how the primary's turn in the chain ends.
    pub(super) async fn hedged(
        &self,
        primary: &Target,
        hedge: Hedge<'_>,
        primary_request: Request,
        original: &Request,
        permit: Option<Permit>,
        tally: &mut Tally,
    ) -> Result<(AttemptReport, Option<Permit>), TargetEnd> {
        let next = hedge.next;
        match self
            .race(
                primary,
                next,
                hedge.trigger,
                primary_request,
                original,
                tally,
            )
            .await
        {
            Race::Primary(report) => Ok((*report, permit)),
            Race::Secondary {
                report,
                permit: next_permit,
            } => {
                // The primary only lost a race: that says nothing about its health.
                record(permit, CallOutcome::Neutral);
                Err(
                    match self.account(next, next_permit, &report, tally, true) {
                        None => TargetEnd::Answered(report),
                        Some(err) => self.after_failed_hedge(next, &report, err, tally),
                    },
                )
            }
        }
    }

    /// A hedge that won and then failed: settle it and move down the chain.
    fn after_failed_hedge(
        &self,
        target: &Target,
        report: &AttemptReport,
        err: ProviderError,
        tally: &mut Tally,
    ) -> TargetEnd {
        tally.keep(err.clone());
        if err.class == ErrorClass::Cancelled
            || (report.committed() && !self.note_interruption(target, report, &err, tally))
        {
            return TargetEnd::Stop(err);
        }
        if self.engine.settings.policy.get(err.class).failover == Failover::No {
            return TargetEnd::Stop(tally.kept_or(err));
        }
        TargetEnd::NextTarget(err.class)
    }

    /// Run `primary`; if it has no first event within the hedge delay, start `next` too. The first
    /// healthy first event wins and reaches the caller; the other attempt is cancelled and paid for.
    async fn race(
        &self,
        primary: &Target,
        next: &Target,
        trigger: HedgeTrigger,
        primary_request: Request,
        original: &Request,
        tally: &mut Tally,
    ) -> Race {
        let shared = &self.engine.shared;
        let delay = match trigger {
            HedgeTrigger::After(delay) => delay,
            HedgeTrigger::Percentile {
                percentile,
                fallback,
            } => shared
                .latency_percentile(primary.name(), percentile)
                .unwrap_or(fallback),
        };
        let mut a = self.spawn_attempt(primary, primary_request, tally.attempts);
        tokio::select! {
            first = a.rx.recv() => return Race::Primary(Box::new(self.pump(first, a).await)),
            () = tokio::time::sleep(delay) => {}
        }
        let next_permit = match shared.breakers.admit(&next.breaker_key) {
            Ok(permit) => permit,
            Err(rejection) => {
                self.skip(next, rejection.reason);
                let first = a.rx.recv().await;
                return Race::Primary(Box::new(self.pump(first, a).await));
            }
        };
        tally.attempts += 1;
        let mut next_request = original.clone();
        next_request.model = next.model_for(original);
        let mut b = self.spawn_attempt(next, next_request, tally.attempts);
        let (mut a_open, mut b_open) = (true, true);
        while a_open || b_open {
            tokio::select! {
                item = a.rx.recv(), if a_open => match item {
                    Some(first) => {
                        let lost = join(b.cancel(), next.name()).await;
                        self.account(next, Some(next_permit), &lost, tally, false);
                        return Race::Primary(Box::new(self.pump(Some(first), a).await));
                    }
                    None => a_open = false,
                },
                item = b.rx.recv(), if b_open => match item {
                    Some(first) => {
                        // The primary's permit is released by the caller; its cost is booked here.
                        let lost = join(a.cancel(), primary.name()).await;
                        self.account(primary, None, &lost, tally, false);
                        let report = self.pump(Some(first), b).await;
                        return Race::Secondary { report: Box::new(report), permit: Some(next_permit) };
                    }
                    None => b_open = false,
                },
            }
        }
        // Neither had a healthy first event: book the hedge's failure, hand back the primary's.
        let failed = join(b.task, next.name()).await;
        if let Some(err) = self.account(next, Some(next_permit), &failed, tally, false) {
            tally.keep(err);
        }
        Race::Primary(Box::new(join(a.task, primary.name()).await))
    }

    /// An attempt running on its own, its events held back in a channel until it wins.
    fn spawn_attempt(&self, target: &Target, request: Request, number: u32) -> Held {
        let (tx, rx) = mpsc::channel(OUT_CAPACITY);
        let engine = self.engine.clone();
        let request_id = self.request_id.clone();
        let provider = Arc::clone(&target.provider);
        let key = target.breaker_key.clone();
        let pool = target.pool_name().map(str::to_string);
        let busy = self.engine.shared.busy(target.name());
        let task = tokio::spawn(async move {
            let _busy = busy;
            let mut ctx = AttemptContext::new(
                &engine.shared.bus,
                &engine.shared.pricing,
                &request_id,
                number,
            );
            ctx.out = Some(&tx);
            ctx.policy = Some(&engine.settings.policy);
            ctx.held = true;
            ctx.limits = Some((&engine.shared.throttle, &key));
            ctx.pool = pool.as_deref();
            attempt::run(provider.as_ref(), request, ctx).await
        });
        Held {
            rx,
            task,
            started: Instant::now(),
            provider: target.name().to_string(),
            number,
        }
    }

    /// Forward a held attempt's events to the caller — announcing its first event and its text,
    /// which it held back while it might lose — then wait for its report.
    async fn pump(
        &self,
        first: Option<Result<StreamEvent, ProviderError>>,
        held: Held,
    ) -> AttemptReport {
        let Held {
            mut rx,
            task,
            started,
            provider,
            number,
        } = held;
        let bus = &self.engine.shared.bus;
        let mut item = first;
        let mut announced = false;
        while let Some(event) = item {
            if !announced {
                announced = true;
                bus.publish(EventKind::FirstEvent {
                    request_id: self.request_id.clone(),
                    attempt: number,
                    provider: provider.clone(),
                    latency_ms: attempt::millis(started.elapsed()),
                });
            }
            if let Ok(StreamEvent::TextDelta { text }) = &event {
                bus.publish_text(&self.request_id, &provider, text);
            }
            if self.out.send(event).await.is_err() {
                break;
            }
            item = tokio::select! {
                next = rx.recv() => next,
                () = self.out.closed() => None,
            };
        }
        // Dropping the receiver cancels the attempt if the caller went away.
        drop(rx);
        join(task, &provider).await
    }
}

/// How a hedged attempt ended.
enum Race {
    /// The primary answered first (or alone); its permit is still the caller's.
    Primary(Box<AttemptReport>),
    /// The hedge won; the primary was cancelled.
    Secondary {
        report: Box<AttemptReport>,
        permit: Option<Permit>,
    },
}

/// A hedged attempt in flight: its held-back events and its task.
struct Held {
    rx: mpsc::Receiver<Result<StreamEvent, ProviderError>>,
    task: tokio::task::JoinHandle<AttemptReport>,
    started: Instant,
    provider: String,
    number: u32,
}

impl Held {
    /// It lost: dropping its receiver cancels it; its task is joined for its cost.
    fn cancel(self) -> tokio::task::JoinHandle<AttemptReport> {
        self.task
    }
}

async fn join(task: tokio::task::JoinHandle<AttemptReport>, provider: &str) -> AttemptReport {
    task.await.unwrap_or_else(|e| {
        AttemptReport::lost(provider, &format!("the attempt task ended abnormally: {e}"))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::engine::chain::{EngineSettings, HedgeTrigger, MidStreamPolicy};
    use crate::engine::testkit::*;

    use crate::event::EventKind;

    use std::time::Duration;
    use tokio::time::Instant;

    fn slow(wait_ms: u64, words: &[&str]) -> Vec<Play> {
        let mut s = vec![Play::Wait(Duration::from_millis(wait_ms))];
        s.extend(reply(words));
        s
    }

    fn hedged(trigger: HedgeTrigger) -> EngineSettings {
        EngineSettings {
            hedge: Some(trigger),
            ..settings(MidStreamPolicy::Restart)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_primary_is_hedged_and_the_first_healthy_event_wins() {
        let a = Scripted::new("a", vec![slow(5_000, &["late"])]);
        let b = Scripted::new("b", vec![slow(100, &["hedged ", "answer"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            hedged(HedgeTrigger::After(Duration::from_secs(1))),
        );
        let started = Instant::now();
        let seen = ask(&e).await;
        assert_eq!(seen.text, "hedged answer");
        assert_eq!(seen.starts, 1, "only the winner reaches the caller");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((a.calls(), b.calls()), (1, 1));
        match seen.finished {
            EventKind::RequestFinished {
                provider, attempts, ..
            } => {
                assert_eq!(provider.as_deref(), Some("b"));
                assert_eq!(attempts, 2, "both attempts are accounted");
            }
            other => panic!("{other:?}"),
        }
        // The loser was cancelled, not blamed: its breaker saw nothing.
        assert_eq!(
            e.shared()
                .breakers
                .snapshot(&"a".into())
                .consecutive_failures,
            0
        );
        let types = &seen.types;
        let failed = types.iter().filter(|t| **t == "attempt_failed").count();
        assert_eq!(failed, 1, "{types:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hedge_that_loses_publishes_no_first_event_and_no_text() {
        // Both produce their first event at the same instant (1.2 s): either may win, but only
        // the winner may announce a first event or text.
        let a = Scripted::new("a", vec![slow(1_200, &["from ", "a"])]);
        let b = Scripted::new("b", vec![slow(200, &["from ", "b"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            hedged(HedgeTrigger::After(Duration::from_secs(1))),
        );
        let mut rx = e.shared().bus.subscribe();
        let seen = ask(&e).await;
        let winner = match &seen.finished {
            EventKind::RequestFinished {
                provider: Some(p), ..
            } => p.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(seen.text, format!("from {winner}"));
        let (mut firsts, mut texts_from) = (Vec::new(), Vec::new());
        while let Ok(ev) = rx.try_recv() {
            match &ev.kind {
                EventKind::FirstEvent { provider, .. } => firsts.push(provider.clone()),
                EventKind::TextDelta { provider, .. } => texts_from.push(provider.clone()),
                _ => {}
            }
        }
        assert_eq!(
            firsts,
            std::slice::from_ref(&winner),
            "one first_event, the winner's"
        );
        assert!(texts_from.iter().all(|p| *p == winner), "{texts_from:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_primary_is_not_hedged() {
        let a = Scripted::new("a", vec![slow(200, &["quick"])]);
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            hedged(HedgeTrigger::After(Duration::from_secs(1))),
        );
        let seen = ask(&e).await;
        assert_eq!(seen.text, "quick");
        assert_eq!(b.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_percentile_trigger_follows_recent_latency() {
        // Twenty quick answers teach the engine that `a` answers within 10 ms.
        let mut scripts: Vec<Vec<Play>> = (0..20).map(|_| slow(10, &["ok"])).collect();
        scripts.push(slow(3_000, &["too late"]));
        let a = Scripted::new("a", scripts);
        let b = Scripted::new("b", vec![slow(50, &["hedge"])]);
        let trigger = HedgeTrigger::Percentile {
            percentile: 95.0,
            fallback: Duration::from_secs(10),
        };
        let e = engine(vec![target(&a, false), target(&b, false)], hedged(trigger));
        for _ in 0..20 {
            assert_eq!(ask(&e).await.text, "ok");
        }
        assert_eq!(b.calls(), 0);
        let started = Instant::now();
        let seen = ask(&e).await;
        assert_eq!(seen.text, "hedge");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "hedged after ~p95 (10 ms), not the fallback: {:?}",
            started.elapsed()
        );
    }
}
