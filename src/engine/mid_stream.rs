//! What happens to a reply that breaks after the caller got part of it, by the chain's
//! [`MidStreamPolicy`]: withdraw it (`StreamEvent::Rewind`) and restart, continue it on a target that
//! takes the partial reply as a prefill, or fail. Also: a continuation that has no tokens left, and
//! the targets that cannot carry a reply on under `continue_or_fail`.

use std::sync::Arc;

use crate::engine::attempt::{self, AttemptReport};
use crate::engine::breaker::Rejection;
use crate::engine::chain::{MidStreamPolicy, Target};
use crate::engine::run::{Next, Run, TargetEnd};
use crate::engine::tally::Tally;
use crate::event::{EventKind, SkipReason};
use crate::provider::{Message, ProviderError, Request, StopReason, StreamEvent};

/// The `attempt_skipped` reason for a target that cannot continue a reply under `continue_or_fail`.
const CANNOT_CONTINUE: SkipReason = SkipReason::CannotContinue;

impl Run {
    /// The caller holds part of a reply that just broke. False when the policy is to fail; otherwise
    /// the partial reply is withdrawn or continued at the next attempt, if one comes.
    pub(super) fn note_interruption(
        &self,
        target: &Target,
        report: &AttemptReport,
        err: &ProviderError,
        tally: &mut Tally,
    ) -> bool {
        if self.engine.settings.mid_stream == MidStreamPolicy::Fail {
            return false;
        }
        tally.interrupted = Some((target.name().to_string(), err.class.as_str().to_string()));
        tally.tool_call |= report.tool_call;
        true
    }

    /// A reply that would be continued has used up the caller's `max_tokens`: it is complete as it
    /// stands, and ends with `max_tokens` as it would have had it not broken — no call is made.
    pub(super) fn out_of_tokens(&self, request: &Request, tally: &Tally) -> Option<AttemptReport> {
        let continues = matches!(
            self.engine.settings.mid_stream,
            MidStreamPolicy::Continue | MidStreamPolicy::ContinueOrFail
        ) && !tally.delivered.is_empty()
            && !tally.tool_call;
        if !continues || tally.tokens_left(request) > 0 {
            return None;
        }
        let provider = tally
            .interrupted
            .as_ref()
            .map_or(self.engine.name.as_str(), |(provider, _)| provider.as_str());
        Some(AttemptReport::without_call(
            provider,
            attempt::Completion {
                stop_reason: StopReason::MaxTokens,
                raw_stop_reason: None,
            },
        ))
    }

    /// Under `continue_or_fail`, the caller has visible content and `target` cannot carry it on: it
    /// takes no prefill, or the content includes a tool call (which cannot be spliced).
    pub(super) fn cannot_continue(&self, target: &Target, tally: &Tally) -> bool {
        self.engine.settings.mid_stream == MidStreamPolicy::ContinueOrFail
            && tally.visible()
            && (!target.accepts_prefill || tally.tool_call)
    }

    /// Skip a target that cannot continue the reply.
    pub(super) fn pass_over(&self, target: &Target) -> TargetEnd {
        self.skip(target, CANNOT_CONTINUE);
        TargetEnd::Rejected(Rejection {
            reason: CANNOT_CONTINUE,
            retry_in: None,
        })
    }

    /// `target` refused the prefill (a 400 before any event). Under `continue_or_fail` the caller's
    /// text cannot be withdrawn: this target just cannot continue it, and the request's error stays
    /// the one that interrupted the reply. Otherwise the reply is withdrawn and the target asked
    /// again from the start.
    pub(super) fn prefill_refused(&self, target: &Target, tally: &mut Tally) -> Next {
        if self.engine.settings.mid_stream == MidStreamPolicy::ContinueOrFail {
            return Next::End(TargetEnd::Rejected(Rejection {
                reason: CANNOT_CONTINUE,
                retry_in: None,
            }));
        }
        tally.interrupted = Some((target.name().to_string(), "prefill rejected".to_string()));
        Next::Rewind
    }

    /// Under `continue` (and `continue_or_fail`), the text to send as a prefill to this target;
    /// otherwise withdraw it. Under `continue_or_fail`, the run has already passed over a
    /// target that cannot continue visible content, so what is withdrawn here is at most a bare
    /// `MessageStart`.
    pub(super) async fn prepare_prefill(
        &self,
        target: &Target,
        tally: &mut Tally,
    ) -> Option<String> {
        if !tally.started && tally.delivered.is_empty() {
            return None;
        }
        // Tool calls cannot be spliced: their arguments would be two providers' halves.
        if matches!(
            self.engine.settings.mid_stream,
            MidStreamPolicy::Continue | MidStreamPolicy::ContinueOrFail
        ) && target.accepts_prefill
            && !tally.tool_call
            && !tally.delivered.is_empty()
        {
            return Some(tally.delivered.clone());
        }
        self.rewind(tally).await;
        None
    }

    /// Withdraw everything the caller has received for this request.
    pub(super) async fn rewind(&self, tally: &mut Tally) {
        debug_assert!(
            !(self.engine.settings.mid_stream == MidStreamPolicy::ContinueOrFail
                && tally.visible()),
            "continue_or_fail never withdraws visible content"
        );
        let (provider, reason) = tally
            .interrupted
            .take()
            .unwrap_or_else(|| (self.engine.name.clone(), "restart".to_string()));
        let reason = if tally.tool_call {
            format!("{reason}; a tool call cannot be continued")
        } else {
            reason
        };
        let discarded_chars = tally.delivered.chars().count() as u64;
        self.engine.shared.bus.publish(EventKind::Rewind {
            request_id: self.request_id.clone(),
            provider,
            discarded_chars,
            reason,
        });
        let _ = self
            .out
            .send(Ok(StreamEvent::Rewind { discarded_chars }))
            .await;
        tally.withdraw();
    }

    /// Make `request` continue `text`: the partial reply goes as an assistant prefill, and the
    /// continuation asks only for the `tokens_left` of the caller's `max_tokens`.
    pub(super) async fn add_prefill(&self, request: &mut Request, text: &str, tokens_left: u32) {
        // The one copy of the conversation (the other attempts share it).
        Arc::make_mut(&mut request.messages).push(Message::assistant(text));
        request.prefill = Some(text.to_string());
        request.max_tokens = tokens_left;
        // The caller learns that what follows is spliced on (normalized events only).
        let _ = self.out.send(Ok(StreamEvent::Spliced)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::engine::chain::MidStreamPolicy;
    use crate::engine::testkit::*;

    use crate::event::{EventKind, Outcome};
    use crate::provider::{ErrorClass, Message, Phase, Request, Role, StopReason, StreamEvent};

    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn restart_withdraws_the_partial_reply_and_answers_from_one_provider() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                text("wor"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["Complete ", "answer."])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Restart),
        ))
        .await;
        assert_eq!(seen.text, "Complete answer.");
        assert_eq!(seen.rewinds, [9]);
        assert_eq!(seen.starts, 2);
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(
            (a.calls(), b.calls()),
            (1, 1),
            "restart goes to the next target"
        );
        let pos = |t: &str| seen.types.iter().position(|x| *x == t).unwrap();
        assert!(pos("attempt_failed") < pos("rewind"));
        match seen.finished {
            EventKind::RequestFinished {
                outcome,
                provider,
                attempts,
                failed_cost_usd,
                cost_usd,
                ..
            } => {
                assert_eq!(outcome, Outcome::Ok);
                assert_eq!(provider.as_deref(), Some("b"));
                assert_eq!(attempts, 2);
                // The cut attempt consumed tokens (estimated) and is paid for.
                assert!(failed_cost_usd > 0.0 && cost_usd > failed_cost_usd);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn continue_sends_the_partial_reply_as_prefill_and_splices() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                text("wor"),
                fail("a", ErrorClass::Stalled, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["ld", "!"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        assert_eq!(seen.text, "Hello world!");
        assert!(seen.rewinds.is_empty());
        assert_eq!(
            seen.starts, 1,
            "the continuation does not start a second message"
        );
        let last = b.last_request().messages.last().cloned().unwrap();
        assert_eq!(last.role, Role::Assistant);
        assert_eq!(last, Message::assistant("Hello wor"));
    }

    /// A request for `max_tokens`.
    fn asking(max_tokens: u32) -> Request {
        Request {
            max_tokens,
            ..Request::prompt("hi")
        }
    }

    /// A stream cut after `pieces`, reporting usage as Anthropic's `message_start` does (1 token).
    fn cut_after(provider: &str, pieces: &[&str]) -> Vec<Play> {
        let mut s = vec![start(), usage(10, 1)];
        s.extend(pieces.iter().map(|p| text(p)));
        s.push(fail(provider, ErrorClass::StreamCut, Phase::MidStream));
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_spliced_reply_names_the_model_that_finished_it_and_counts_all_its_output() {
        // Cut after three pieces of four characters: three tokens streamed, though its usage
        // (as Anthropic's `message_start` has it) says 1.
        let a = Scripted::new("a", vec![cut_after("a", &["One ", "two ", "six "])]);
        let b = Scripted::new(
            "b",
            vec![vec![
                Play::Emit(Ok(StreamEvent::MessageStart {
                    id: "m2".into(),
                    model: "claude-haiku-4-5".into(),
                })),
                usage(25, 1),
                text("ten"),
                text("."),
                usage(25, 2),
                done(),
            ]],
        );
        let seen = ask(&engine(
            vec![target(&a, true), target(&b, true)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        assert_eq!(seen.text, "One two six ten.");
        assert_eq!(seen.starts, 1, "one message");
        assert_eq!(seen.continued_by, ["claude-haiku-4-5"]);
        let usage = seen.usage.unwrap();
        // The input the finishing attempt read (the prefill in it), the output of both parts.
        assert_eq!((usage.input_tokens, usage.output_tokens), (25, 3 + 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_continuation_asks_only_for_the_tokens_left() {
        // Four characters a piece: three tokens by either count, whatever usage said (1).
        let a = Scripted::new("a", vec![cut_after("a", &["One ", "two ", "six "])]);
        // Short pieces: each is still a token, though their text is only five characters.
        let b = Scripted::new("b", vec![cut_after("b", &["a", "b", "c", "d", "e"])]);
        let c = Scripted::new("c", vec![reply(&["end"])]);
        let seen = ask_for(
            &engine(
                vec![target(&a, true), target(&b, true), target(&c, true)],
                settings(MidStreamPolicy::Continue),
            ),
            asking(10),
        )
        .await;
        assert_eq!(seen.text, "One two six abcdeend");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(a.last_request().max_tokens, 10);
        assert_eq!(b.last_request().max_tokens, 10 - 3);
        assert_eq!(c.last_request().max_tokens, 10 - 3 - 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_continuation_with_no_tokens_left_ends_with_max_tokens_and_no_call() {
        for policy in [MidStreamPolicy::Continue, MidStreamPolicy::ContinueOrFail] {
            let a = Scripted::new("a", vec![cut_after("a", &["One ", "two ", "six "])]);
            let b = Scripted::new("b", vec![reply(&["more"])]);
            let seen = ask_for(
                &engine(vec![target(&a, true), target(&b, true)], settings(policy)),
                asking(3),
            )
            .await;
            assert_eq!(seen.text, "One two six ");
            assert_eq!(seen.end.unwrap(), StopReason::MaxTokens, "{policy:?}");
            assert_eq!(b.calls(), 0, "nothing left to ask for");
            match seen.finished {
                EventKind::RequestFinished {
                    outcome,
                    provider,
                    stop_reason,
                    attempts,
                    ..
                } => {
                    assert_eq!(outcome, Outcome::Ok);
                    assert_eq!(provider.as_deref(), Some("a"), "who wrote the reply");
                    assert_eq!(stop_reason.as_deref(), Some("max_tokens"));
                    assert_eq!(attempts, 1);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_asks_for_the_whole_max_tokens_again() {
        let a = Scripted::new("a", vec![cut_after("a", &["One ", "two ", "six "])]);
        let b = Scripted::new("b", vec![reply(&["Fresh."])]);
        let seen = ask_for(
            &engine(
                vec![target(&a, true), target(&b, true)],
                settings(MidStreamPolicy::Restart),
            ),
            asking(3),
        )
        .await;
        assert_eq!(seen.text, "Fresh.");
        assert_eq!(b.last_request().max_tokens, 3, "the text was withdrawn");
    }

    #[tokio::test(start_paused = true)]
    async fn continue_restarts_where_the_target_cannot_take_a_prefill() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["Fresh."])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        assert_eq!(seen.text, "Fresh.");
        assert_eq!(seen.rewinds, [6]);
        assert_eq!(b.last_request().messages.len(), 1, "no prefill sent");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_prefill_restarts_and_never_masks_the_original_error() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        // b refuses the prefill, then is down for the plain request too.
        let b = Scripted::new(
            "b",
            vec![
                vec![fail("b", ErrorClass::BadRequest, Phase::Headers)],
                vec![fail("b", ErrorClass::Overloaded, Phase::Headers)],
                vec![fail("b", ErrorClass::Overloaded, Phase::Headers)],
            ],
        );
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_ne!(
            err.class,
            ErrorClass::BadRequest,
            "the prefill refusal must not be what the caller sees"
        );
        assert_eq!(err.class, ErrorClass::Overloaded);
        assert_eq!(
            seen.rewinds,
            [6],
            "the partial reply is withdrawn before restarting"
        );
        assert_eq!(
            b.calls(),
            3,
            "prefill, then the plain request and its retry"
        );
        assert_eq!(b.last_request().messages.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tool_call_streams_restart_even_under_continue() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                Play::Emit(Ok(StreamEvent::ToolCallStart {
                    index: 0,
                    id: "t1".into(),
                    name: "get_weather".into(),
                })),
                Play::Emit(Ok(StreamEvent::ToolCallDelta {
                    index: 0,
                    partial_json: "{\"loc".into(),
                })),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["ok"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::Continue),
        ))
        .await;
        assert_eq!(seen.rewinds.len(), 1);
        assert_eq!(
            b.last_request().messages.len(),
            1,
            "no prefill of a half tool call"
        );
        assert_eq!(seen.text, "ok");
    }

    #[tokio::test(start_paused = true)]
    async fn fail_policy_ends_with_the_error_and_tries_nothing_else() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hel"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::Fail),
        ))
        .await;
        assert_eq!(seen.end.unwrap_err().class, ErrorClass::StreamCut);
        assert_eq!(b.calls(), 0);
    }

    fn cannot_continue(provider: &str) -> (String, String) {
        (provider.to_string(), "cannot_continue".to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_carries_visible_text_on_where_a_target_takes_a_prefill() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                text("wor"),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let c = Scripted::new("c", vec![reply(&["ld", "!"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false), target(&c, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Hello world!");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(seen.starts, 1);
        assert_eq!(seen.skips, [cannot_continue("b")], "b takes no prefill");
        assert_eq!((a.calls(), b.calls(), c.calls()), (1, 0, 1));
        let last = c.last_request().messages.last().cloned().unwrap();
        assert_eq!(last, Message::assistant("Hello wor"));
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_ends_with_the_cut_when_no_target_can_continue() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::StreamCut, "a")
        );
        assert_eq!(seen.text, "Hello ", "what the caller saw stays");
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(seen.skips, [cannot_continue("b")]);
        assert_eq!(b.calls(), 0);
        match seen.finished {
            EventKind::RequestFinished { outcome, class, .. } => {
                assert_eq!(outcome, Outcome::Error);
                assert_eq!(class, Some(ErrorClass::StreamCut));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_restarts_invisibly_before_any_text() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                usage(10, 0),
                fail("a", ErrorClass::Overloaded, Phase::MidStream),
            ]],
        );
        let b = Scripted::new("b", vec![reply(&["Fresh."])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Fresh.");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(seen.rewinds, [0], "only a bare message start is withdrawn");
        assert!(seen.skips.is_empty());
        assert_eq!(b.last_request().messages.len(), 1, "no prefill");
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_never_splices_or_withdraws_a_tool_call() {
        let mut script = vec![start()];
        script.extend(tool_call());
        script.push(fail("a", ErrorClass::StreamCut, Phase::MidStream));
        let a = Scripted::new("a", vec![script]);
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.end.unwrap_err().class, ErrorClass::StreamCut);
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(
            seen.skips,
            [cannot_continue("b")],
            "b takes a prefill, but not of a tool call"
        );
        assert_eq!(b.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_a_refused_prefill_keeps_the_original_error() {
        let a = Scripted::new(
            "a",
            vec![vec![
                start(),
                text("Hello "),
                fail("a", ErrorClass::StreamCut, Phase::MidStream),
            ]],
        );
        let b = Scripted::new(
            "b",
            vec![
                vec![answer("b", ErrorClass::BadRequest, 400, None)],
                reply(&["unused"]),
            ],
        );
        let seen = ask(&engine(
            vec![target(&a, false), target(&b, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        let err = seen.end.unwrap_err();
        assert_eq!(
            (err.class, err.provider.as_str()),
            (ErrorClass::StreamCut, "a"),
            "the refusal must not mask the cut"
        );
        assert!(seen.rewinds.is_empty());
        assert!(!seen.types.contains(&"rewind"), "{:?}", seen.types);
        assert_eq!(b.calls(), 1, "no restart without the prefill");
        assert_eq!(seen.text, "Hello ");
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_retries_the_last_target_with_the_prefill() {
        let a = Scripted::new(
            "a",
            vec![
                vec![
                    start(),
                    text("Hel"),
                    fail("a", ErrorClass::Stalled, Phase::MidStream),
                ],
                reply(&["lo"]),
            ],
        );
        let seen = ask(&engine(
            vec![target(&a, true)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Hello");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert!(seen.rewinds.is_empty());
        assert_eq!(seen.starts, 1);
        assert_eq!(a.calls(), 2);
        let last = a.last_request().messages.last().cloned().unwrap();
        assert_eq!(last, Message::assistant("Hel"));
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_retries_its_own_target_when_the_next_cannot_continue() {
        let a = Scripted::new(
            "a",
            vec![
                vec![
                    start(),
                    text("Hel"),
                    fail("a", ErrorClass::StreamCut, Phase::MidStream),
                ],
                reply(&["lo"]),
            ],
        );
        let b = Scripted::new("b", vec![reply(&["unused"])]);
        let seen = ask(&engine(
            vec![target(&a, true), target(&b, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.text, "Hello", "a carried its own reply on");
        assert_eq!(seen.end.unwrap(), StopReason::EndTurn);
        assert_eq!(
            b.calls(),
            0,
            "b could only have restarted, which the caller can't unsee"
        );
        assert_eq!(a.calls(), 2);
        assert!(seen.rewinds.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn continue_or_fail_does_not_wait_to_retry_a_target_that_cannot_continue() {
        let a = Scripted::new(
            "a",
            vec![
                vec![
                    start(),
                    text("Hel"),
                    fail("a", ErrorClass::StreamCut, Phase::MidStream),
                ],
                reply(&["unused"]),
            ],
        );
        let started = Instant::now();
        let seen = ask(&engine(
            vec![target(&a, false)],
            settings(MidStreamPolicy::ContinueOrFail),
        ))
        .await;
        assert_eq!(seen.end.unwrap_err().class, ErrorClass::StreamCut);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "no backoff before giving up"
        );
        assert!(seen.skips.is_empty(), "a was tried, not skipped");
        assert_eq!(a.calls(), 1);
        assert!(seen.rewinds.is_empty());
    }
}
