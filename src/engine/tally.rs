//! What one request has spent and delivered so far ([`Tally`]), and the error it will end with if
//! nothing answers.

use crate::engine::attempt::AttemptReport;
use crate::engine::decide::informativeness;
use crate::provider::{ProviderError, Request, Usage};

/// Running totals of one request.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) attempts: u32,
    pub(super) cost: f64,
    pub(super) failed_cost: f64,
    /// Some attempt used a model without a price: `cost` and `failed_cost` are lower bounds.
    pub(super) unpriced: bool,
    /// The error the caller will get if nothing answers: the most informative one seen (see
    /// [`Tally::keep`]), not merely the last.
    pub(super) error: Option<ProviderError>,
    /// Reply text the caller has received and that has not been withdrawn.
    pub(super) delivered: String,
    /// The output tokens that text cost (see [`output_tokens`]): what a continuation may no longer
    /// ask for.
    pub(super) delivered_tokens: u64,
    /// What the attempts whose text the caller kept were billed (a spliced reply's usage is
    /// theirs and the last attempt's together).
    pub(super) delivered_usage: Usage,
    /// The caller has received a `MessageStart`.
    pub(super) started: bool,
    /// The caller has part of a tool call.
    pub(super) tool_call: bool,
    /// Who failed after the caller got part of a reply, and why: the reason of the next rewind.
    pub(super) interrupted: Option<(String, String)>,
    /// Targets passed over as throttled wait behind the chain (`steer`): a target failing with
    /// none after it still has somewhere to go.
    pub(super) steered: bool,
}

impl Tally {
    /// Offer a failure as the request's error: it replaces the one held only if it tells the
    /// caller more ([`informativeness`]); on a tie the one held — the earliest — stays. The request
    /// ends with the kept error whenever it runs out of targets, retries or attempts; only a
    /// cancellation and the `fail` mid-stream policy end it with the failure at hand.
    ///
    /// Every real failure of the request is offered, a mid-stream one included, and a failed
    /// continuation or restart competes with it by the same rule: a stream cut followed by a 503
    /// on the restart reports the 503 (the provider said something), a stream cut followed by a
    /// connect failure reports the cut (the earlier of two transport failures). What is never
    /// offered: a target's refusal of a prefill (the engine's own doing, not the caller's fault).
    pub(super) fn keep(&mut self, err: ProviderError) {
        if self
            .error
            .as_ref()
            .is_none_or(|held| informativeness(&err) > informativeness(held))
        {
            self.error = Some(err);
        }
    }

    /// The error to end the request with when nothing is left to try: the one kept, else `err`.
    pub(super) fn kept_or(&self, err: ProviderError) -> ProviderError {
        self.error.clone().unwrap_or(err)
    }

    /// The caller received this attempt's events: its text is part of the reply now.
    pub(super) fn deliver(&mut self, report: &AttemptReport) {
        self.started |= report.committed();
        self.delivered.push_str(&report.text);
        self.delivered_tokens += output_tokens(report);
        if report.result.is_err() {
            self.delivered_usage = self.delivered_usage.plus(&report.usage);
        }
    }

    /// The caller was told to forget what it received: nothing is delivered any more.
    pub(super) fn withdraw(&mut self) {
        self.delivered.clear();
        self.delivered_tokens = 0;
        self.delivered_usage = Usage::default();
        self.started = false;
        self.tool_call = false;
    }

    /// Of the caller's `max_tokens`, what a continuation may still ask for.
    pub(super) fn tokens_left(&self, request: &Request) -> u32 {
        let left = u64::from(request.max_tokens).saturating_sub(self.delivered_tokens);
        u32::try_from(left).unwrap_or(u32::MAX)
    }

    /// The caller has seen part of the reply it could not un-see: text, or part of a tool call.
    /// (A bare `MessageStart` or `Usage` is not content.)
    pub(super) fn visible(&self) -> bool {
        !self.delivered.is_empty() || self.tool_call
    }
}

/// The output tokens an attempt spent of the caller's `max_tokens`. A cut stream reports too few
/// or none (Anthropic's `message_start` says 1; OpenAI reports usage last), so never fewer than
/// the pieces it streamed (each at least a token) nor than its text at about four characters a
/// token: a continuation must not be asked for more than is left.
fn output_tokens(report: &AttemptReport) -> u64 {
    let by_text = (report.text.chars().count() as u64).div_ceil(4);
    report
        .usage
        .output_tokens
        .max(report.output_pieces)
        .max(by_text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provider::{ErrorClass, Phase};
    use std::time::Duration;

    #[test]
    fn keep_holds_the_most_informative_error_and_the_earliest_on_a_tie() {
        let plain = |p: &str, class| ProviderError::new(p, class, Phase::Headers, "x");
        let http = |p: &str, class, status, retry_after: Option<u64>| ProviderError {
            status: Some(status),
            retry_after: retry_after.map(Duration::from_secs),
            ..plain(p, class)
        };
        let in_stream = |p: &str, class, ty: &str| ProviderError {
            error_type: Some(ty.to_string()),
            phase: Phase::MidStream,
            ..plain(p, class)
        };
        let kept = |errors: Vec<ProviderError>| {
            let mut tally = Tally::default();
            for e in errors {
                tally.keep(e);
            }
            let e = tally.error.unwrap();
            (e.provider, e.class)
        };
        use ErrorClass::*;
        let cases: Vec<(Vec<ProviderError>, (&str, ErrorClass))> = vec![
            (
                vec![plain("a", Connect), plain("b", Timeout)],
                ("a", Connect),
            ),
            (
                vec![plain("a", Cancelled), plain("b", Stalled)],
                ("b", Stalled),
            ),
            (
                vec![plain("a", StreamCut), plain("b", Unavailable)],
                ("a", StreamCut),
            ),
            (
                vec![
                    plain("a", StreamCut),
                    in_stream("b", Overloaded, "overloaded_error"),
                ],
                ("b", Overloaded),
            ),
            (
                vec![plain("a", Malformed), http("b", Timeout, 504, None)],
                ("b", Timeout),
            ),
            (
                vec![
                    http("a", ServerError, 500, None),
                    http("b", Overloaded, 503, None),
                ],
                ("a", ServerError),
            ),
            (
                vec![
                    http("a", RateLimited, 429, None),
                    http("b", RateLimited, 429, Some(2)),
                ],
                ("b", RateLimited),
            ),
            (
                vec![
                    http("a", NotFound, 404, None),
                    http("b", RateLimited, 429, Some(2)),
                ],
                ("a", NotFound),
            ),
            (
                vec![http("a", Auth, 401, None), plain("b", ContextLength)],
                ("b", ContextLength),
            ),
        ];
        for (errors, (provider, class)) in cases {
            let names: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert_eq!(kept(errors), (provider.to_string(), class), "{names:?}");
        }
    }
}
