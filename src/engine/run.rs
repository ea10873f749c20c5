//! One request's journey down the chain ([`Run`]): which targets to try (a pool's members in the
//! order the pool picks for this request, `pool`), the attempts on each (breaker admission, the
//! attempt budget, retries with their backoff), the booking of every attempt, and the request's end.
//! Hedging is in `hedge`, continuing or withdrawing a partial reply in `mid_stream`.

use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::attempt::{self, AttemptContext, AttemptReport};
use crate::engine::breaker::{BreakerState, CallOutcome, Permit, Rejection};
use crate::engine::chain::{Target, WhenAllOpen};
use crate::engine::classify::Failover;
use crate::engine::decide::{Facts, Step, next_step};
use crate::engine::failover::{FailoverEngine, RequestMeta};
use crate::engine::pool;
use crate::engine::progress::Progress;
use crate::engine::retry::Backoff;
use crate::engine::tally::Tally;
use crate::event::{EventKind, Outcome, SkipReason};
use crate::provider::{ErrorClass, Phase, ProviderError, Request, StreamEvent};

/// One request's journey down the chain.
pub(super) struct Run {
    pub(super) engine: FailoverEngine,
    pub(super) request_id: String,
    /// The caller's stream.
    pub(super) out: mpsc::Sender<Result<StreamEvent, ProviderError>>,
    /// Who the caller's events come from, for the caller to read alongside them.
    pub(super) progress: Progress,
}

/// How a request's attempts on one target ended.
pub(super) enum TargetEnd {
    /// It answered (or the reply stands complete as it is).
    Answered(Box<AttemptReport>),
    /// It was passed over: its breaker refused, or it cannot continue the reply (or refused to).
    Rejected(Rejection),
    /// Move on to the next target, after a failure of this class.
    NextTarget(ErrorClass),
    /// End the request with this error.
    Stop(ProviderError),
}

/// One target's attempts so far.
pub(super) struct TargetRun<'t> {
    pub(super) target: &'t Target,
    /// The targets after it.
    pub(super) later: &'t [Target],
    /// Skip the breaker (the all-open fallback).
    pub(super) bypass: bool,
    backoff: Backoff,
    /// Retries made on it.
    retries: u32,
    /// Attempts made on it.
    pub(super) tries: u32,
}

/// Where a failed attempt leaves its target.
pub(super) enum Next {
    /// Done with the target: how.
    End(TargetEnd),
    /// Withdraw the caller's partial reply and try the target again, without a prefill.
    Rewind,
    /// Try the target again after this delay.
    RetryIn(Duration),
}

impl Run {
    /// Announce the request, walk the chain, and settle the request with what came of it.
    pub(super) async fn drive(mut self, request: Request, meta: RequestMeta) {
        if !meta.failover {
            let first = self.engine.targets.first().cloned();
            self.engine = self.engine.with_targets(first.into_iter().collect());
        }
        let started = Instant::now();
        let engine = &self.engine;
        let bus = &engine.shared.bus;
        let (prompt, prompt_chars) = crate::event::prompt_excerpt(meta.prompt);
        // This request's order: a pool's members as its strategy picks them now.
        let targets = pool::ordered(&engine.targets, &engine.shared);
        bus.publish(EventKind::RequestStarted {
            request_id: self.request_id.clone(),
            source: meta.source,
            chain: targets.iter().map(|t| t.name().to_string()).collect(),
            prompt,
            prompt_chars,
            chain_name: meta.chain_name,
            failover: (!meta.failover).then_some(false),
            max_tokens: (request.max_tokens > 0).then_some(request.max_tokens),
            stream: meta.stream,
        });
        let mut tally = Tally::default();
        let result = self.walk(&request, &targets, &mut tally).await;
        self.finish(result, tally, started).await;
    }

    /// Walk the chain's `targets` in this request's order; `Ok` carries the answering attempt.
    async fn walk(
        &self,
        request: &Request,
        targets: &[Target],
        tally: &mut Tally,
    ) -> Result<AttemptReport, ProviderError> {
        let settings = &*self.engine.settings;
        let mut skipped: Vec<(&Target, Rejection)> = Vec::new();
        let mut min_context: Option<u64> = None;
        let mut steered: Vec<usize> = Vec::new();
        for (index, target) in targets.iter().enumerate() {
            if let Some(reason) = unsuitable(target, request, min_context) {
                self.skip(target, reason);
                continue;
            }
            if self.steer_past(target, &targets[index + 1..], request, min_context) {
                self.skip(target, SkipReason::Throttled);
                steered.push(index);
                tally.steered = true;
                continue;
            }
            match self
                .on_target(target, request, tally, &targets[index + 1..], false)
                .await
            {
                TargetEnd::Answered(report) => return Ok(*report),
                TargetEnd::Rejected(rejection) => skipped.push((target, rejection)),
                TargetEnd::NextTarget(class) => {
                    if settings.policy.get(class).failover == Failover::LargerContext {
                        min_context = Some(target.context_window.unwrap_or(0));
                    }
                }
                TargetEnd::Stop(err) => return Err(err),
            }
        }
        if let Some(end) = self
            .try_steered(targets, &steered, request, tally, &mut skipped)
            .await
        {
            return end;
        }
        if tally.attempts == 0 && !skipped.is_empty() {
            return self.all_refused(request, tally, &skipped).await;
        }
        Err(self.nothing_answered(tally))
    }

    /// Every target tried refused at its breaker. The operator may prefer one try at the provider
    /// that has been down longest over no answer at all.
    async fn all_refused(
        &self,
        request: &Request,
        tally: &mut Tally,
        skipped: &[(&Target, Rejection)],
    ) -> Result<AttemptReport, ProviderError> {
        let engine = &self.engine;
        if engine.settings.when_all_open == WhenAllOpen::TryEarliest
            && let Some(&(target, _)) = skipped
                .iter()
                .filter(|(_, r)| r.reason != SkipReason::ForcedOpen)
                .min_by_key(|(t, _)| engine.shared.breakers.opened_at(&t.breaker_key))
            && let TargetEnd::Answered(report) =
                self.on_target(target, request, tally, &[], true).await
        {
            return Ok(*report);
        }
        if tally.attempts == 0 {
            return Err(self.all_unavailable(skipped));
        }
        Err(self.nothing_answered(tally))
    }

    /// The error of a request that walked the chain and got no answer: the one kept.
    fn nothing_answered(&self, tally: &Tally) -> ProviderError {
        tally.error.clone().unwrap_or_else(|| {
            ProviderError::new(
                &self.engine.name,
                ErrorClass::Unavailable,
                Phase::Connect,
                "no target could be tried",
            )
        })
    }

    /// Attempts on one target until it answers, gives way to the next, or ends the request.
    /// `later`: the targets after this one. `bypass` skips the breaker (the all-open fallback).
    pub(super) async fn on_target(
        &self,
        target: &Target,
        request: &Request,
        tally: &mut Tally,
        later: &[Target],
        bypass: bool,
    ) -> TargetEnd {
        let mut at = TargetRun {
            target,
            later,
            bypass,
            backoff: Backoff::new(&self.engine.settings.retry),
            retries: 0,
            tries: 0,
        };
        loop {
            let permit = match self.admit(&at, request, tally) {
                Ok(permit) => permit,
                Err(end) => return end,
            };
            self.count_attempt(tally);
            // Carry on from the text the caller already has, or withdraw it first.
            let prefill = self.prepare_prefill(target, tally).await;
            let (report, permit) = match self
                .attempt(&mut at, request, prefill.as_deref(), permit, tally)
                .await
            {
                Ok(attempted) => attempted,
                Err(end) => return end,
            };
            let Some(err) = self.account(target, permit, &report, tally, true) else {
                return TargetEnd::Answered(Box::new(report));
            };
            match self.after_failed_attempt(&mut at, &report, err, prefill.is_some(), tally) {
                Next::End(end) => return end,
                Next::Rewind => self.rewind(tally).await,
                Next::RetryIn(delay) => {
                    if let Err(end) = self.wait_to_retry(target, delay).await {
                        return end;
                    }
                }
            }
        }
    }

    /// One more attempt is being made.
    pub(super) fn count_attempt(&self, tally: &mut Tally) {
        tally.attempts += 1;
        self.progress.attempts(tally.attempts);
    }

    /// Whether `at.target` may have another attempt now, and the breaker's permit for it (none
    /// when the breaker is bypassed). `Err`: how the target ends instead.
    fn admit(
        &self,
        at: &TargetRun<'_>,
        request: &Request,
        tally: &Tally,
    ) -> Result<Option<Permit>, TargetEnd> {
        let target = at.target;
        if let Some(done) = self.out_of_tokens(request, tally) {
            return Err(TargetEnd::Answered(Box::new(done)));
        }
        if self.cannot_continue(target, tally) {
            return Err(self.pass_over(target));
        }
        let permit = if at.bypass {
            None
        } else {
            match self.engine.shared.breakers.admit(&target.breaker_key) {
                Ok(permit) => Some(permit),
                Err(rejection) => {
                    self.skip(target, rejection.reason);
                    return Err(TargetEnd::Rejected(rejection));
                }
            }
        };
        if tally.attempts >= self.engine.settings.retry.max_attempts {
            return Err(TargetEnd::Stop(tally.error.clone().unwrap_or_else(|| {
                ProviderError::new(
                    target.name(),
                    ErrorClass::Unavailable,
                    Phase::Connect,
                    "the request's attempt budget is spent",
                )
            })));
        }
        Ok(permit)
    }

    /// Make one attempt on `at.target`: the request as it gets it, continuing `prefill` if there is
    /// one, hedged by the next target when that is due. `Ok`: its report and the permit it still
    /// holds; `Err`: a hedge won, and this is how the target ends.
    async fn attempt(
        &self,
        at: &mut TargetRun<'_>,
        request: &Request,
        prefill: Option<&str>,
        permit: Option<Permit>,
        tally: &mut Tally,
    ) -> Result<(AttemptReport, Option<Permit>), TargetEnd> {
        let mut attempt_request = request.clone();
        attempt_request.model = at.target.model_for(request);
        if let Some(text) = prefill {
            let tokens_left = tally.tokens_left(request);
            self.add_prefill(&mut attempt_request, text, tokens_left)
                .await;
        }
        let hedge = self.hedge_due(at, prefill.is_some());
        at.tries += 1;
        match hedge {
            None => {
                let report = self
                    .run_attempt(at.target, attempt_request, prefill.is_some(), tally)
                    .await;
                Ok((report, permit))
            }
            Some(hedge) => {
                self.hedged(at.target, hedge, attempt_request, request, permit, tally)
                    .await
            }
        }
    }

    /// Run an attempt whose events go straight to the caller. `prefilled`: it continues the reply
    /// the caller has.
    async fn run_attempt(
        &self,
        target: &Target,
        request: Request,
        prefilled: bool,
        tally: &Tally,
    ) -> AttemptReport {
        let engine = &self.engine;
        let mut ctx = AttemptContext::new(
            &engine.shared.bus,
            &engine.shared.pricing,
            &self.request_id,
            tally.attempts,
        );
        ctx.out = Some(&self.out);
        ctx.continuing = prefilled && tally.started;
        if prefilled {
            ctx.usage_before = tally.delivered_usage;
        }
        ctx.policy = Some(&engine.settings.policy);
        ctx.limits = Some((&engine.shared.throttle, &target.breaker_key));
        ctx.pool = target.pool_name();
        let _busy = engine.shared.busy(target.name());
        let model = if request.model.is_empty() {
            target.provider.default_model()
        } else {
            &request.model
        };
        self.progress.forwarding(target.name(), model);
        attempt::run(target.provider.as_ref(), request, ctx).await
    }

    /// What a failed attempt means for its target: the end of it, or another try. `prefilled`: the
    /// attempt continued the caller's partial reply.
    fn after_failed_attempt(
        &self,
        at: &mut TargetRun<'_>,
        report: &AttemptReport,
        err: ProviderError,
        prefilled: bool,
        tally: &mut Tally,
    ) -> Next {
        let target = at.target;
        if err.class == ErrorClass::Cancelled {
            return Next::End(TargetEnd::Stop(err));
        }
        // A target that refuses the prefill gets the request again from the start; its
        // refusal must not hide the failure that made us continue.
        if prefilled && !report.committed() && err.class == ErrorClass::BadRequest {
            return self.prefill_refused(target, tally);
        }
        tally.keep(err.clone());
        if (report.committed() || prefilled) && !self.note_interruption(target, report, &err, tally)
        {
            return Next::End(TargetEnd::Stop(err));
        }

        // Under `continue_or_fail` with content out, only a target that can carry it on counts
        // as a next one; when none can, this one (if it can) is retried with the prefill.
        let has_next_target =
            tally.steered || at.later.iter().any(|t| !self.cannot_continue(t, tally));
        let facts = Facts {
            error: &err,
            committed: report.committed(),
            has_next_target,
            next_in_pool: at.later.first().is_some_and(|t| t.same_pool(target)),
            retries: at.retries,
            elapsed: report.elapsed,
        };
        let settings = &*self.engine.settings;
        let (step, _why) = next_step(
            settings,
            &facts,
            &mut at.backoff,
            &self.engine.shared.budget,
        );
        match step {
            Step::Retry(delay) => {
                // No point waiting for a target that could not take the reply on anyway:
                // it was tried, not skipped; the later ones say for themselves why not.
                if self.cannot_continue(target, tally) {
                    return Next::End(TargetEnd::NextTarget(err.class));
                }
                // Nor for one whose breaker this failure just opened (or whose probe failed): the
                // retry would be turned away after its wait. Move on now.
                if !at.bypass && self.breaker_turns_away(target) {
                    return Next::End(TargetEnd::NextTarget(err.class));
                }
                // Nor when the retry would spend an attempt the request's budget keeps for a
                // target not yet tried: a healthy third provider is worth more than a third try
                // on a failing second.
                if has_next_target && self.retry_would_starve(at, tally) {
                    return Next::End(TargetEnd::NextTarget(err.class));
                }
                at.retries += 1;
                Next::RetryIn(delay)
            }
            Step::NextTarget => Next::End(TargetEnd::NextTarget(err.class)),
            // Nothing left to try: the request ends with the most telling failure of all.
            Step::Fail => Next::End(TargetEnd::Stop(tally.kept_or(err))),
        }
    }

    /// Whether one more attempt on this target would leave a later one without its first within
    /// the request's `max_attempts`.
    fn retry_would_starve(&self, at: &TargetRun<'_>, tally: &Tally) -> bool {
        let untried = u32::try_from(at.later.len()).unwrap_or(u32::MAX);
        tally.attempts.saturating_add(untried) >= self.engine.settings.retry.max_attempts
    }

    /// Whether `target`'s breaker now turns requests away (open, or tripped by the operator).
    fn breaker_turns_away(&self, target: &Target) -> bool {
        matches!(
            self.engine.shared.breakers.state(&target.breaker_key),
            BreakerState::Open | BreakerState::ForcedOpen
        )
    }

    /// Wait before retrying `target`; `Err` when the caller went away meanwhile.
    async fn wait_to_retry(&self, target: &Target, delay: Duration) -> Result<(), TargetEnd> {
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = self.out.closed() => Err(TargetEnd::Stop(ProviderError::new(
                target.name(),
                ErrorClass::Cancelled,
                Phase::Connect,
                "the caller went away",
            ))),
        }
    }

    /// Book an attempt's cost, text and outcome (breaker, latency, flags). `None` if it answered.
    /// `delivered`: the attempt's events reached the caller (not a hedge that lost).
    pub(super) fn account(
        &self,
        target: &Target,
        permit: Option<Permit>,
        report: &AttemptReport,
        tally: &mut Tally,
        delivered: bool,
    ) -> Option<ProviderError> {
        let shared = &self.engine.shared;
        shared.note_attempt(report);
        tally.cost += report.cost_usd;
        tally.unpriced |= report.unpriced;
        if delivered {
            tally.deliver(report);
        }
        let err = match &report.result {
            Ok(_) => {
                let outcome = match report.first_event_ms {
                    Some(ms) => CallOutcome::Answered {
                        first_event: Duration::from_millis(ms),
                    },
                    None => CallOutcome::Success,
                };
                record(permit, outcome);
                if let Some(ms) = report.first_event_ms {
                    shared.note_latency(target.name(), ms);
                }
                return None;
            }
            Err(err) => err.clone(),
        };
        tally.failed_cost += report.cost_usd;
        let counts = err.class != ErrorClass::Cancelled
            && self.engine.settings.policy.get(err.class).breaker;
        let outcome = if counts {
            CallOutcome::Failure {
                retry_after: err.retry_after,
            }
        } else {
            CallOutcome::Neutral
        };
        record(permit, outcome);
        if matches!(
            err.class,
            ErrorClass::Auth | ErrorClass::Permission | ErrorClass::Redirect
        ) {
            shared.bus.publish(EventKind::ProviderFlagged {
                provider: target.name().to_string(),
                flag: crate::event::ProviderFlag::Misconfigured,
                reason: format!("{}: {}", err.class, err.message),
            });
        }
        Some(err)
    }

    /// Publish that `target` was passed over, and why.
    pub(super) fn skip(&self, target: &Target, reason: SkipReason) {
        self.engine.shared.bus.publish(EventKind::AttemptSkipped {
            request_id: self.request_id.clone(),
            provider: target.name().to_string(),
            reason,
        });
    }

    /// The error of a request that every breaker refused: who, and when the first lets a probe through.
    fn all_unavailable(&self, skipped: &[(&Target, Rejection)]) -> ProviderError {
        let parts: Vec<String> = skipped
            .iter()
            .map(|(target, r)| {
                let name = target.name();
                match r.retry_in {
                    Some(d) => format!(
                        "{name} {} (retry in {:.0} s)",
                        r.reason,
                        d.as_secs_f64().ceil()
                    ),
                    None => format!("{name} {}", r.reason),
                }
            })
            .collect();
        let mut err = ProviderError::new(
            &self.engine.name,
            ErrorClass::Unavailable,
            Phase::Connect,
            format!("every provider is unavailable: {}", parts.join(", ")),
        );
        // When the first breaker lets a probe through: what a caller's retry should wait for.
        // A breaker forced open by the operator has no such time.
        err.retry_after = skipped.iter().filter_map(|(_, r)| r.retry_in).min();
        err
    }

    /// Publish `request_finished` and send the caller the final `Done` or error.
    async fn finish(
        self,
        result: Result<AttemptReport, ProviderError>,
        tally: Tally,
        started: Instant,
    ) {
        let engine = &self.engine;
        let total_ms = attempt::millis(started.elapsed());
        let (event, last) = match result {
            Ok(report) => {
                let done = report.result.as_ref().ok().cloned();
                // What this answer would have cost at the primary's prices.
                let primary_cost_usd = engine.targets.first().and_then(|t| {
                    let model = t.model.as_deref().unwrap_or(t.provider.default_model());
                    engine.shared.pricing.cost(model, &report.usage)
                });
                let stop = done.as_ref().map(|d| d.stop_reason.as_str().to_string());
                (
                    EventKind::RequestFinished {
                        request_id: self.request_id.clone(),
                        outcome: Outcome::Ok,
                        provider: Some(report.provider.clone()),
                        stop_reason: stop,
                        class: None,
                        message: None,
                        total_ms,
                        cost_usd: tally.cost,
                        attempts: tally.attempts,
                        failed_cost_usd: tally.failed_cost,
                        primary_cost_usd,
                        unpriced: tally.unpriced,
                    },
                    done.map(|d| {
                        Ok(StreamEvent::Done {
                            stop_reason: d.stop_reason,
                            raw_stop_reason: d.raw_stop_reason,
                        })
                    }),
                )
            }
            Err(err) => (
                EventKind::RequestFinished {
                    request_id: self.request_id.clone(),
                    outcome: Outcome::Error,
                    provider: None,
                    stop_reason: None,
                    class: Some(err.class),
                    message: Some(err.message.clone()),
                    total_ms,
                    cost_usd: tally.cost,
                    attempts: tally.attempts,
                    failed_cost_usd: tally.failed_cost,
                    primary_cost_usd: None,
                    unpriced: tally.unpriced,
                },
                Some(Err(err)),
            ),
        };
        engine.shared.bus.publish(event);
        if let Some(item) = last {
            // The caller may be gone; the request is settled either way.
            let _ = self.out.send(item).await;
        }
    }
}

/// Why `target` is not worth trying for `request`: its context is no larger than one that proved
/// too small (`min_context`), or the request is bound to another protocol.
pub(super) fn unsuitable(
    target: &Target,
    request: &Request,
    min_context: Option<u64>,
) -> Option<SkipReason> {
    if let Some(min) = min_context
        && target.context_window.is_none_or(|c| c <= min)
    {
        return Some(SkipReason::ContextTooSmall);
    }
    if let Some(original) = request.original.as_deref()
        && original.bound
        && target.provider.protocol() != Some(original.protocol)
    {
        return Some(SkipReason::OtherProtocol);
    }
    None
}

/// Tell a call's breaker how it went, when it went through one.
pub(super) fn record(permit: Option<Permit>, outcome: CallOutcome) {
    if let Some(permit) = permit {
        permit.record(outcome);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::engine::breaker::{BreakerConfig, Breakers, CallOutcome};
    use crate::engine::chain::{EngineSettings, MidStreamPolicy, WhenAllOpen};
    use crate::engine::classify::{Failover, Policy};
    use crate::engine::cost::Pricing;
    use crate::engine::failover::{FailoverEngine, RequestMeta, Shared};
    use crate::engine::retry::{BudgetConfig, RetryBudget};
    use crate::engine::testkit::*;
    use crate::event::{Bus, EventKind, Source};
    use crate::provider::{ErrorClass, Phase, ProviderError, Request, StreamEvent};
    use futures::StreamExt;
    use std::collections::BTreeMap;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_on_the_same_target() {
        let mut limited =
            ProviderError::new("a", ErrorClass::RateLimited, Phase::Headers, "slow down");
        limited.retry_after = Some(Duration::from_secs(3));
        let a = Scripted::new(
            "a",
            vec![
                vec![Play::Emit(Err(limited))],
                reply(&["after ", "waiting"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let started = Instant::now();
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "after waiting");
        assert!(
            started.elapsed() >= Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((a.calls(), b.calls()), (2, 0));
    }

    /// A failure that opens its target's breaker moves the request on at once, rather than
    /// sleeping the retry backoff only to be turned away by the breaker (issue 14).
    #[tokio::test(start_paused = true)]
    async fn a_failure_that_opens_the_breaker_does_not_wait_out_the_backoff() {
        let a = Scripted::new(
            "a",
            vec![vec![fail("a", ErrorClass::ServerError, Phase::Headers)]],
        );
        let b = Scripted::new("b", vec![reply(&["from ", "b"])]);
        let bus = Bus::new(4096);
        let one_strike = BreakerConfig {
            consecutive_failures: 1,
            ..BreakerConfig::default()
        };
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 100.0,
            refill_per_sec: 10.0,
        });
        let mut slow_retries = settings(MidStreamPolicy::Restart);
        slow_retries.retry.min_delay = Duration::from_secs(2);
        slow_retries.retry.max_delay = Duration::from_secs(2);
        let e = FailoverEngine::new(
            "chain",
            vec![target(&a, false), target(&b, false)],
            slow_retries,
            Shared::new(
                bus.clone(),
                Breakers::new(one_strike, bus),
                budget,
                Pricing::built_in(),
            ),
        );
        let started = Instant::now();
        let seen = ask(&e).await;
        assert_eq!(seen.text, "from b");
        assert_eq!((a.calls(), b.calls()), (1, 1));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited {:?} for a retry the breaker would refuse",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_closed_after_a_long_silence_is_not_retried_on_the_same_route() {
        let closes_after = |name: &str, wait: Duration| {
            Scripted::new(
                name,
                vec![
                    vec![
                        Play::Wait(wait),
                        fail(name, ErrorClass::Connect, Phase::Headers)
                    ];
                    3
                ],
            )
        };
        // Silent for 15 s, then closed without a byte: on to the fallback at once.
        let a = closes_after("a", Duration::from_secs(15));
        let b = Scripted::new("b", vec![reply(&["from ", "b"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        let started = Instant::now();
        assert_eq!(ask(&e).await.text, "from b");
        assert_eq!((a.calls(), b.calls()), (1, 1));
        assert!(
            started.elapsed() < Duration::from_secs(16),
            "{:?}",
            started.elapsed()
        );

        // A prompt reset is a blip: the same target is tried again.
        let a = closes_after("a", Duration::from_millis(20));
        let b = Scripted::new("b", vec![reply(&["from ", "b"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        ask(&e).await;
        assert!(a.calls() > 1, "a prompt reset was not retried");
    }

    #[tokio::test(start_paused = true)]
    async fn request_faults_do_not_fail_over_and_the_caller_gets_the_providers_reason() {
        for class in [
            ErrorClass::BadRequest,
            ErrorClass::ContentFilter,
            ErrorClass::NotFound,
            ErrorClass::TooLarge,
            ErrorClass::ContextLength,
        ] {
            let a = Scripted::new("a", vec![vec![fail("a", class, Phase::Headers)]]);
            let b = Scripted::new("b", vec![reply(&["unused"])]);
            let seen = ask(&engine(
                vec![target(&a, false), target(&b, false)],
                settings(MidStreamPolicy::Restart),
            ))
            .await;
            let err = seen.end.unwrap_err();
            assert_eq!(err.class, class);
            assert_eq!(err.message, format!("{class} from a"));
            assert_eq!((a.calls(), b.calls()), (1, 0), "{class}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn context_length_goes_only_to_a_larger_context() {
        let a = Scripted::new(
            "a",
            vec![vec![fail("a", ErrorClass::ContextLength, Phase::Headers)]],
        );
        let small = Scripted::new("small", vec![reply(&["unused"])]);
        let large = Scripted::new("large", vec![reply(&["roomy"])]);
        let mut ta = target(&a, false);
        ta.context_window = Some(200_000);
        let mut ts = target(&small, false);
        ts.context_window = Some(128_000);
        let mut tl = target(&large, false);
        tl.context_window = Some(1_000_000);
        let seen = ask(&engine(
            vec![ta, ts, tl],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "roomy");
        assert_eq!((a.calls(), small.calls(), large.calls()), (1, 0, 1));
        assert!(seen.types.contains(&"attempt_skipped"));
    }

    #[tokio::test(start_paused = true)]
    async fn auth_fails_over_and_flags_the_provider() {
        let a = Scripted::new("a", vec![vec![fail("a", ErrorClass::Auth, Phase::Headers)]]);
        let b = Scripted::new("b", vec![reply(&["fine"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "fine");
        assert_eq!(a.calls(), 1, "auth is not retried");
        assert!(seen.types.contains(&"provider_flagged"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_timeout_fails_over_at_once() {
        let a = Scripted::new(
            "a",
            vec![
                vec![fail("a", ErrorClass::Timeout, Phase::FirstEvent)],
                reply(&["unused"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["fast"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "fast");
        assert_eq!(a.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_stream_cancels_the_request() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("slow"),
                Play::Wait(Duration::from_secs(60)),
                done(),
            ]],
        );
        let e = engine(vec![target(&a, false)], settings(MidStreamPolicy::Restart));
        let mut rx = e.shared().bus.subscribe();
        let (_, mut stream) = e.send(Request::prompt("hi"), RequestMeta::new(Source::Ask));
        while let Some(Ok(ev)) = stream.next().await {
            if matches!(ev, StreamEvent::TextDelta { .. }) {
                break;
            }
        }
        drop(stream);
        let finished = loop {
            let ev = rx.recv().await.unwrap();
            if let EventKind::RequestFinished { class, .. } = &ev.kind {
                break *class;
            }
        };
        assert_eq!(finished, Some(ErrorClass::Cancelled));
    }

    #[tokio::test(start_paused = true)]
    async fn all_targets_forced_open_fails_fast_naming_them() {
        let a = Scripted::new("a", vec![reply(&["x"])]);
        let b = Scripted::new("b", vec![reply(&["y"])]);
        let e = engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        );
        e.shared().breakers.force_open("a");
        e.shared().breakers.force_open("b");
        let seen = ask(&e).await;
        let err = seen.end.unwrap_err();
        assert_eq!(err.class, ErrorClass::Unavailable);
        assert!(
            err.message.contains("a forced_open") && err.message.contains("b forced_open"),
            "{}",
            err.message
        );
        assert_eq!((a.calls(), b.calls()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn when_all_are_open_try_earliest_tries_the_one_down_longest() {
        let a = Scripted::new(
            "a",
            vec![
                vec![fail("a", ErrorClass::ServerError, Phase::Headers)],
                reply(&["unused"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["from b, down longest"])]);
        let bus = Bus::new(4096);
        let one_strike = BreakerConfig {
            consecutive_failures: 1,
            ..BreakerConfig::default()
        };
        let breakers = Breakers::new(one_strike, bus.clone());
        let budget = RetryBudget::new(&BudgetConfig {
            capacity: 100.0,
            refill_per_sec: 10.0,
        });
        let mut s = settings(MidStreamPolicy::Restart);
        s.retry.max_retries = 0;
        s.when_all_open = WhenAllOpen::TryEarliest;
        let e = FailoverEngine::new(
            "chain",
            vec![target(&a, false), target(&b, false)],
            s,
            Shared::new(bus, breakers, budget, Pricing::built_in()),
        );
        // b's breaker opens first (a failure seen elsewhere), a's a second later.
        e.shared()
            .breakers
            .admit(&"b".into())
            .unwrap()
            .record(CallOutcome::Failure { retry_after: None });
        tokio::time::advance(Duration::from_secs(1)).await;
        let first = ask(&e).await;
        assert_eq!(first.end.unwrap_err().class, ErrorClass::ServerError);
        // Everything is open: rather than no answer, one try at b, open longest.
        let second = ask(&e).await;
        assert_eq!(second.text, "from b, down longest");
        assert_eq!((a.calls(), b.calls()), (1, 1));
        assert_eq!(
            second
                .types
                .iter()
                .filter(|t| **t == "attempt_skipped")
                .count(),
            2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_on_failing_targets_leave_the_attempt_budget_for_a_healthy_later_one() {
        let down = |name: &str| {
            Scripted::new(
                name,
                (0..3)
                    .map(|_| vec![fail(name, ErrorClass::ServerError, Phase::Headers)])
                    .collect(),
            )
        };
        let (a, b, d) = (down("a"), down("b"), down("d"));
        let c = Scripted::new("c", vec![reply(&["from c"])]);
        let mut s = settings(MidStreamPolicy::Restart);
        s.retry.max_retries = 2;
        s.retry.max_attempts = 6;
        let e = engine(
            vec![
                target(&a, false),
                target(&b, false),
                target(&c, false),
                target(&d, false),
            ],
            s,
        );
        let seen = ask(&e).await;
        assert_eq!(seen.text, "from c");
        // a has its three tries; b only one, so that c and d each keep one within the six.
        assert_eq!((a.calls(), b.calls(), c.calls(), d.calls()), (3, 1, 1, 0));
    }

    fn no_retries() -> EngineSettings {
        let mut s = settings(MidStreamPolicy::Restart);
        s.retry.max_retries = 0;
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_with_retry_after_outranks_a_later_refused_connection() {
        let anthropic = Scripted::new(
            "anthropic",
            vec![vec![answer(
                "anthropic",
                ErrorClass::RateLimited,
                429,
                Some(7),
            )]],
        );
        let openai = Scripted::new(
            "openai",
            vec![vec![fail("openai", ErrorClass::Connect, Phase::Connect)]],
        );
        let seen = ask(&engine(
            vec![target(&anthropic, false), target(&openai, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(err.class, ErrorClass::RateLimited);
        assert_eq!(
            (err.provider.as_str(), err.status),
            ("anthropic", Some(429))
        );
        assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
        assert_eq!((anthropic.calls(), openai.calls()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_providers_503_outranks_an_earlier_refused_connection() {
        let anthropic = Scripted::new(
            "anthropic",
            vec![vec![fail("anthropic", ErrorClass::Connect, Phase::Connect)]],
        );
        let openai = Scripted::new(
            "openai",
            vec![vec![answer("openai", ErrorClass::Overloaded, 503, None)]],
        );
        let seen = ask(&engine(
            vec![target(&anthropic, false), target(&openai, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!((err.class, err.status), (ErrorClass::Overloaded, Some(503)));
        assert_eq!(err.provider, "openai");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_outranks_an_earlier_server_error() {
        let anthropic = Scripted::new(
            "anthropic",
            vec![vec![answer(
                "anthropic",
                ErrorClass::ServerError,
                500,
                None,
            )]],
        );
        let openai = Scripted::new(
            "openai",
            vec![vec![answer(
                "openai",
                ErrorClass::RateLimited,
                429,
                Some(3),
            )]],
        );
        let seen = ask(&engine(
            vec![target(&anthropic, false), target(&openai, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!((err.provider.as_str(), err.status), ("openai", Some(429)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_fault_that_fails_over_is_not_masked_by_a_later_timeout() {
        let mut s = no_retries();
        let failover = crate::engine::classify::ClassPolicyOverride {
            failover: Some(Failover::Yes),
            ..Default::default()
        };
        s.policy = Policy::with_overrides(&BTreeMap::from([(ErrorClass::BadRequest, failover)]));
        let a = Scripted::new(
            "a",
            vec![vec![answer("a", ErrorClass::BadRequest, 400, None)]],
        );
        let b = Scripted::new(
            "b",
            vec![vec![fail("b", ErrorClass::Timeout, Phase::Headers)]],
        );
        let seen = ask(&engine(vec![target(&a, false), target(&b, false)], s)).await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::BadRequest, "a")
        );
        assert_eq!(b.calls(), 1, "the policy let it fail over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_whose_restart_fails_to_connect_reports_the_cut() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hel"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new(
            "b",
            vec![vec![fail("b", ErrorClass::Connect, Phase::Connect)]],
        );
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            no_retries(),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::StreamCut, "a"),
            "two transport failures: the earlier stays"
        );
    }
}
