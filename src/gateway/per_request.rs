//! The gateway's own headers. A request may pick a chain (`x-breakerbox-chain: NAME`) and turn
//! failover off (`x-breakerbox-failover: off`); every reply says who answered and after what
//! (`x-breakerbox-provider`, `-model`, `-attempts`, `-failed-over`).
//!
//! None of these goes upstream: a target of the client's protocol gets only that protocol's short
//! list of the client's headers ([`Protocol::forwarded_headers`](crate::provider::Protocol)), and
//! the gateway drops any `x-breakerbox-` name from it besides.
//!
//! When the reply headers are exact: a non-streaming reply, a buffered route's stream and every
//! error are answered once the request is settled. A live stream's headers go out with its first
//! content, so they say who was answering then; if the reply is later continued by another target
//! (a mid-stream failure under `continue`), the stream ends with an SSE comment repeating the
//! headers with their final values, just before its last event. SSE clients skip comments, so the
//! official SDKs read the stream as before.

use axum::http::{HeaderMap, HeaderValue};

use crate::engine::progress::{Answering, Progress};
use crate::provider::{ProviderError, StreamEvent};

/// The request header that picks a configured chain by name.
pub const CHAIN: &str = "x-breakerbox-chain";
/// The request header that turns failover off (`off`) for one request.
pub const FAILOVER: &str = "x-breakerbox-failover";
/// The response header naming the provider that answered.
pub const PROVIDER: &str = "x-breakerbox-provider";
/// The response header naming the model that answered (as its provider named it).
pub const MODEL: &str = "x-breakerbox-model";
/// The response header counting the attempts made (retries and hedges included).
pub const ATTEMPTS: &str = "x-breakerbox-attempts";
/// The response header saying whether the answer came from a target other than the chain's first.
pub const FAILED_OVER: &str = "x-breakerbox-failed-over";
/// The gateway's own header names begin so; none is sent upstream.
pub const PREFIX: &str = "x-breakerbox-";

/// What a request asks of the gateway by header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The chain to go down instead of the route's.
    pub chain: Option<String>,
    /// False: only the chain's first target (its retries included).
    pub failover: bool,
}

/// A request header the gateway cannot read: which, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadHeader {
    pub header: &'static str,
    pub message: String,
}

/// Read the request's `x-breakerbox-chain` and `x-breakerbox-failover`.
pub fn asked(headers: &HeaderMap) -> Result<Asked, BadHeader> {
    let chain = single(headers, CHAIN)?;
    if chain.as_deref() == Some("") {
        return Err(BadHeader {
            header: CHAIN,
            message: format!("{CHAIN} is empty: name a chain, or leave the header out"),
        });
    }
    let failover = match single(headers, FAILOVER)?.map(|v| v.to_ascii_lowercase()) {
        None => true,
        Some(v) if matches!(v.as_str(), "on" | "true" | "yes" | "1") => true,
        Some(v) if matches!(v.as_str(), "off" | "false" | "no" | "0") => false,
        Some(v) => {
            return Err(BadHeader {
                header: FAILOVER,
                message: format!("{FAILOVER}: `{v}` is neither `on` nor `off`"),
            });
        }
    };
    Ok(Asked { chain, failover })
}

/// The one value of header `name` (trimmed), if the request has it.
fn single(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, BadHeader> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BadHeader {
            header: name,
            message: format!("{name} is given more than once: send it once"),
        });
    }
    match value.to_str() {
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(_) => Err(BadHeader {
            header: name,
            message: format!("{name} is not readable text"),
        }),
    }
}

/// The message for a chain a request named that does not exist: the header, and the chains there are.
pub fn unknown_chain(name: &str, known: &[String]) -> String {
    format!(
        "{CHAIN}: no chain is named `{name}` on this gateway; the chains are: {}",
        known.join(", ")
    )
}

/// Who answered a request and after what, as the response headers say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answered {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    /// Whether `provider` is another than the chain's first target (unknown without a provider).
    pub failed_over: Option<bool>,
}

impl Answered {
    /// A reply from `progress.provider`; `model` is the one its provider named, when it did.
    /// `primary`: the chain's first target.
    pub fn reply(progress: &Answering, model: Option<&str>, primary: &str) -> Answered {
        Answered {
            provider: progress.provider.clone(),
            model: model
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .or_else(|| progress.model.clone()),
            attempts: progress.attempts,
            failed_over: progress.provider.as_deref().map(|p| p != primary),
        }
    }

    /// An error reply: the provider is the one whose error it is, when that is one of the chain's
    /// `targets` (not the gateway, nor the chain as a whole); no model.
    pub fn error(progress: &Answering, err: &ProviderError, targets: &[String]) -> Answered {
        let provider = targets
            .contains(&err.provider)
            .then(|| err.provider.clone());
        let primary = targets.first().map(String::as_str);
        Answered {
            failed_over: provider.as_deref().map(|p| Some(p) != primary),
            provider,
            model: None,
            attempts: progress.attempts,
        }
    }

    /// The headers, name and value, that are known.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(provider) = &self.provider {
            pairs.push((PROVIDER, provider.clone()));
        }
        if let Some(model) = &self.model {
            pairs.push((MODEL, model.clone()));
        }
        pairs.push((ATTEMPTS, self.attempts.to_string()));
        if let Some(failed_over) = self.failed_over {
            pairs.push((FAILED_OVER, failed_over.to_string()));
        }
        pairs
    }

    /// Set the headers on a response (a value that is not a valid header value is left out).
    pub fn insert(&self, headers: &mut HeaderMap) {
        for (name, value) in self.pairs() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }

    /// The headers as an SSE comment (`: name: value` lines and a blank line), for the end of a
    /// live stream whose answer changed after its headers went out.
    pub fn comment(&self) -> String {
        let mut text = String::new();
        for (name, value) in self.pairs() {
            let value: String = value
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            text.push_str(&format!(": {name}: {value}\n"));
        }
        text.push('\n');
        text
    }
}

/// The model that answered a reply made of `events`, as its provider named it: the last
/// `MessageStart` or `ContinuedBy` after the last rewind.
pub fn answering_model(events: &[StreamEvent]) -> Option<&str> {
    crate::gateway::wire::after_last_rewind(events)
        .iter()
        .rev()
        .find_map(|event| match event {
            StreamEvent::MessageStart { model, .. } | StreamEvent::ContinuedBy { model }
                if !model.is_empty() =>
            {
                Some(model.as_str())
            }
            _ => None,
        })
}

/// A whole reply whose start names the model that finished it: for a spliced reply sent at once
/// (a buffered route), whose first frames can name it — the `MessageStart`, and the upstream's own
/// frames that carry a model (Anthropic's `message_start`, every Chat Completions chunk) when the
/// reply began as a passthrough. Other replies are left as they are, value for value.
pub fn named_by_finisher(mut events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    let Some(finisher) = events.iter().rev().find_map(|event| match event {
        StreamEvent::ContinuedBy { model } if !model.is_empty() => Some(model.clone()),
        _ => None,
    }) else {
        return events;
    };
    for event in &mut events {
        match event {
            StreamEvent::MessageStart { model, .. } => model.clone_from(&finisher),
            StreamEvent::Wire { event, data } => {
                let pointer = match event.as_deref() {
                    Some("message_start") => "/message/model",
                    None => "/model",
                    Some(_) => continue,
                };
                if let Some(renamed) = with_model(data, pointer, &finisher) {
                    *data = renamed;
                }
            }
            _ => {}
        }
    }
    events
}

/// `data` (JSON) with the string at `pointer` replaced by `model`; `None` if it has none there.
fn with_model(data: &str, pointer: &str, model: &str) -> Option<String> {
    let mut value: serde_json::Value = serde_json::from_str(data).ok()?;
    let slot = value.pointer_mut(pointer).filter(|v| v.is_string())?;
    *slot = serde_json::Value::String(model.to_string());
    Some(value.to_string())
}

/// What a live stream's headers said, to tell the client at the end if it changed: a reply
/// continued by another target ends with the headers' final values as an SSE comment.
pub struct Trailer {
    sent: Answered,
    progress: Progress,
    primary: String,
    model: Option<String>,
    told: bool,
}

impl Trailer {
    /// After the headers `sent`; `progress` is the request's, `primary` its chain's first target.
    pub fn new(sent: &Answered, progress: Progress, primary: &str) -> Trailer {
        Trailer {
            sent: sent.clone(),
            progress,
            primary: primary.to_string(),
            model: sent.model.clone(),
            told: false,
        }
    }

    /// One event of the stream as it goes out.
    pub fn see(&mut self, event: &StreamEvent) {
        if let StreamEvent::ContinuedBy { model } = event
            && !model.is_empty()
        {
            self.model = Some(model.clone());
        }
    }

    /// The comment to send before the stream's last event, once, if the answer is not what the
    /// headers said.
    pub fn changed(&mut self) -> Option<String> {
        if self.told {
            return None;
        }
        self.told = true;
        let now = Answered::reply(&self.progress.now(), self.model.as_deref(), &self.primary);
        (now != self.sent).then(|| now.comment())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::provider::{ErrorClass, Phase};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn no_protocol_forwards_a_header_of_the_gateways() {
        use crate::provider::Protocol;
        for protocol in [
            Protocol::Anthropic,
            Protocol::Openai,
            Protocol::OpenaiResponses,
        ] {
            let forwarded = protocol.forwarded_headers();
            assert!(
                forwarded.iter().all(|h| !h.starts_with(PREFIX)),
                "{forwarded:?}"
            );
        }
    }

    #[test]
    fn the_request_headers_are_read_strictly() {
        let none = asked(&HeaderMap::new()).unwrap();
        assert_eq!((none.chain, none.failover), (None, true));
        let both = asked(&headers(&[(CHAIN, " fast "), (FAILOVER, "OFF")])).unwrap();
        assert_eq!(
            (both.chain.as_deref(), both.failover),
            (Some("fast"), false)
        );
        for on in ["on", "true", "yes", "1"] {
            assert!(asked(&headers(&[(FAILOVER, on)])).unwrap().failover, "{on}");
        }
        for (pairs, header, says) in [
            (
                vec![(FAILOVER, "sometimes")],
                FAILOVER,
                "neither `on` nor `off`",
            ),
            (vec![(CHAIN, "")], CHAIN, "is empty"),
            (vec![(CHAIN, "a"), (CHAIN, "b")], CHAIN, "more than once"),
        ] {
            let err = asked(&headers(&pairs)).unwrap_err();
            assert_eq!(err.header, header);
            assert!(err.message.contains(says), "{}", err.message);
        }
    }

    #[test]
    fn a_reply_names_its_provider_and_whether_it_failed_over() {
        let progress = Answering {
            attempts: 2,
            provider: Some("backup".into()),
            model: Some("asked-model".into()),
        };
        let answered = Answered::reply(&progress, Some("claude-haiku-4-5"), "primary");
        let mut map = HeaderMap::new();
        answered.insert(&mut map);
        assert_eq!(map[PROVIDER], "backup");
        assert_eq!(map[MODEL], "claude-haiku-4-5");
        assert_eq!(map[ATTEMPTS], "2");
        assert_eq!(map[FAILED_OVER], "true");
        assert_eq!(
            answered.comment(),
            ": x-breakerbox-provider: backup\n: x-breakerbox-model: claude-haiku-4-5\n\
             : x-breakerbox-attempts: 2\n: x-breakerbox-failed-over: true\n\n"
        );
        // Without a model of its provider's naming, the one asked for.
        let asked_for = Answered::reply(&progress, None, "backup");
        assert_eq!(asked_for.model.as_deref(), Some("asked-model"));
        assert_eq!(asked_for.failed_over, Some(false));
    }

    #[test]
    fn an_error_names_a_provider_only_when_it_is_one_of_the_chains() {
        let progress = Answering {
            attempts: 1,
            ..Answering::default()
        };
        let targets = vec!["primary".to_string(), "backup".to_string()];
        let theirs = ProviderError::new("primary", ErrorClass::ServerError, Phase::Headers, "x");
        let answered = Answered::error(&progress, &theirs, &targets);
        assert_eq!(answered.provider.as_deref(), Some("primary"));
        assert_eq!(answered.failed_over, Some(false));
        let ours = ProviderError::new("default", ErrorClass::Unavailable, Phase::Connect, "x");
        let answered = Answered::error(&progress, &ours, &targets);
        assert_eq!((answered.provider, answered.failed_over), (None, None));
    }
}
