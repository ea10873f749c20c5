//! Fault kinds and their parameters, written `KIND[:PARAM=VALUE,...]` (e.g. `rate_limit:retry_after=5s,p=0.3`).
//!
//! The table [`KINDS`] is the single source of truth: parsing, the defaults and `--help-faults` all
//! read it, so the help text cannot drift from what the parser accepts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::parse::parse_duration;

/// What a simulated provider does wrong, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    None,
    RateLimit {
        retry_after: Duration,
    },
    /// A rate limit that runs out: `requests` (and `tokens`, unless 0) per window of `per`,
    /// stated in the protocol's rate-limit headers on every response and spent by each request;
    /// once spent, a 429 with `retry-after` until the window resets.
    RateLimitBudget {
        requests: u32,
        tokens: u32,
        per: Duration,
    },
    Quota,
    /// `status: None` means the protocol's own: 529 for Anthropic, 503 for OpenAI.
    Overloaded {
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    ServerError {
        status: u16,
    },
    BadRequest,
    ContextLength,
    ContentFilter,
    Auth,
    ConnectRefused,
    Reset,
    NoResponse {
        duration: Duration,
    },
    SlowFirstEvent {
        delay: Duration,
    },
    Stall {
        after: u32,
        duration: Duration,
    },
    StreamCut {
        after: u32,
    },
    MidStreamError {
        after: u32,
        error_type: String,
    },
    Malformed {
        after: u32,
    },
    NoDone,
    /// Down (showing `fault`) for `down`, then up for `up`; with no `up`, healthy for good after one
    /// down period. The cycle starts when the fault is set.
    Flap {
        down: Duration,
        up: Option<Duration>,
        fault: Box<FaultKind>,
    },
    Latency {
        first: Duration,
        token: Duration,
    },
}

/// A fault and the share of requests it affects.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Probability (0..=1) that a request meets the fault, drawn from the seeded generator.
    pub p: f64,
}

impl Fault {
    pub fn none() -> Self {
        Fault::new(FaultKind::None)
    }

    /// A fault affecting every request.
    pub fn new(kind: FaultKind) -> Self {
        Fault { kind, p: 1.0 }
    }

    pub fn is_none(&self) -> bool {
        self.kind == FaultKind::None
    }
}

/// A fault string that does not parse; the message names the bad part and lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(String);

struct KindSpec {
    name: &'static str,
    about: &'static str,
    params: &'static [ParamSpec],
    build: fn(&Params) -> Result<FaultKind, FaultParseError>,
}

struct ParamSpec {
    name: &'static str,
    /// Written like a value; empty means "absent unless given".
    default: &'static str,
    about: &'static str,
}

const fn param(name: &'static str, default: &'static str, about: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        default,
        about,
    }
}

const AFTER: ParamSpec = param(
    "after",
    "5",
    "content tokens sent before it happens (or at the end of the content, if shorter)",
);

const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "none",
        about: "healthy",
        params: &[],
        build: |_| Ok(FaultKind::None),
    },
    KindSpec {
        name: "rate_limit",
        about: "429; Anthropic rate_limit_error, OpenAI rate_limit_exceeded",
        params: &[param(
            "retry_after",
            "2s",
            "the retry-after header (whole seconds, rounded up; OpenAI also gets retry-after-ms)",
        )],
        build: |p| {
            Ok(FaultKind::RateLimit {
                retry_after: p.duration("retry_after")?,
            })
        },
    },
    KindSpec {
        name: "rate_limit_budget",
        about: "healthy, with a rate limit that runs out: every response states what is left in \
                the protocol's rate-limit headers (anthropic-ratelimit-*, x-ratelimit-*); each \
                request spends one request and its tokens; once spent, 429 + retry-after until \
                the window resets",
        params: &[
            param("requests", "50", "requests per window"),
            param(
                "tokens",
                "100000",
                "tokens (input and output) per window; 0: tokens are not limited",
            ),
            param("per", "60s", "the window, from when the fault is set"),
        ],
        build: |p| {
            let requests = p.count("requests")?;
            if requests == 0 {
                return Err(p.bad("requests", "at least 1 request per window"));
            }
            let per = p.duration("per")?;
            if per < Duration::from_millis(100) {
                return Err(p.bad("per", "a window of 100ms or longer"));
            }
            Ok(FaultKind::RateLimitBudget {
                requests,
                tokens: p.count("tokens")?,
                per,
            })
        },
    },
    KindSpec {
        name: "quota",
        about: "out of credit: OpenAI 429 insufficient_quota, Anthropic 400 \"credit balance is too low\"",
        params: &[],
        build: |_| Ok(FaultKind::Quota),
    },
    KindSpec {
        name: "overloaded",
        about: "Anthropic 529 overloaded_error, OpenAI 503",
        params: &[
            param(
                "status",
                "",
                "HTTP status instead of the protocol's (529 / 503)",
            ),
            param(
                "retry_after",
                "",
                "send a retry-after header with this delay",
            ),
        ],
        build: |p| {
            Ok(FaultKind::Overloaded {
                status: p.opt_status("status")?,
                retry_after: p.opt_duration("retry_after")?,
            })
        },
    },
    KindSpec {
        name: "server_error",
        about: "Anthropic api_error, OpenAI server_error",
        params: &[param("status", "500", "HTTP status")],
        build: |p| {
            Ok(FaultKind::ServerError {
                status: p.status("status")?,
            })
        },
    },
    KindSpec {
        name: "bad_request",
        about: "400 invalid_request_error",
        params: &[],
        build: |_| Ok(FaultKind::BadRequest),
    },
    KindSpec {
        name: "context_length",
        about: "400: the prompt is too long (OpenAI code context_length_exceeded)",
        params: &[],
        build: |_| Ok(FaultKind::ContextLength),
    },
    KindSpec {
        name: "content_filter",
        about: "400: blocked by the content policy (OpenAI code content_policy_violation)",
        params: &[],
        build: |_| Ok(FaultKind::ContentFilter),
    },
    KindSpec {
        name: "auth",
        about: "401 authentication_error / invalid_api_key",
        params: &[],
        build: |_| Ok(FaultKind::Auth),
    },
    KindSpec {
        name: "connect_refused",
        about: "the provider's direct port stops listening, so connections are refused; on the \
                shared port (where the provider is only known from the path) it is imitated by a \
                TCP reset after the request is read",
        params: &[],
        build: |_| Ok(FaultKind::ConnectRefused),
    },
    KindSpec {
        name: "reset",
        about: "reads the request, then resets the connection (TCP RST) before any response byte",
        params: &[],
        build: |_| Ok(FaultKind::Reset),
    },
    KindSpec {
        name: "no_response",
        about: "reads the request and never answers",
        params: &[param(
            "for",
            "10m",
            "how long to keep the connection open before closing it",
        )],
        build: |p| {
            Ok(FaultKind::NoResponse {
                duration: p.duration("for")?,
            })
        },
    },
    KindSpec {
        name: "slow_first_event",
        about: "200 headers at once, the first event late",
        params: &[param("delay", "15s", "time before the first event")],
        build: |p| {
            Ok(FaultKind::SlowFirstEvent {
                delay: p.duration("delay")?,
            })
        },
    },
    KindSpec {
        name: "stall",
        about: "goes silent mid-stream with the connection open, then resumes",
        params: &[AFTER, param("for", "10m", "how long the silence lasts")],
        build: |p| {
            Ok(FaultKind::Stall {
                after: p.count("after")?,
                duration: p.duration("for")?,
            })
        },
    },
    KindSpec {
        name: "stream_cut",
        about: "aborts the connection mid-stream, without the terminating event",
        params: &[AFTER],
        build: |p| {
            Ok(FaultKind::StreamCut {
                after: p.count("after")?,
            })
        },
    },
    KindSpec {
        name: "mid_stream_error",
        about: "an in-stream error (Anthropic `event: error`, OpenAI a `data:` payload with \
                `error`, the Responses API `response.failed`), then the stream ends",
        params: &[
            AFTER,
            param(
                "type",
                "overloaded_error",
                "the error's type (e.g. api_error); without a stream, overloaded_error answers as \
                 `overloaded` does and any other type as `server_error`",
            ),
        ],
        build: |p| {
            Ok(FaultKind::MidStreamError {
                after: p.count("after")?,
                error_type: p.word("type")?,
            })
        },
    },
    KindSpec {
        name: "malformed",
        about: "one invalid event (truncated JSON) mid-stream, then the stream ends",
        params: &[param("after", "3", AFTER.about)],
        build: |p| {
            Ok(FaultKind::Malformed {
                after: p.count("after")?,
            })
        },
    },
    KindSpec {
        name: "no_done",
        about: "a complete stream without its end marker (OpenAI `data: [DONE]`, Anthropic \
                message_stop, the Responses API response.completed)",
        params: &[],
        build: |_| Ok(FaultKind::NoDone),
    },
    KindSpec {
        name: "flap",
        about: "down for a period, then up; the cycle starts when the fault is set",
        params: &[
            param("down", "10s", "how long each down period lasts"),
            param(
                "up",
                "",
                "how long each up period lasts; absent: healthy for good after one down period",
            ),
            param(
                "fault",
                "overloaded",
                "the kind shown while down, with its default parameters",
            ),
        ],
        build: |p| {
            let down = p.duration("down")?;
            if down.is_zero() {
                return Err(p.bad("down", "a down period longer than 0"));
            }
            Ok(FaultKind::Flap {
                down,
                up: p.opt_duration("up")?,
                fault: Box::new(p.inner_kind("fault")?),
            })
        },
    },
    KindSpec {
        name: "latency",
        about: "slow but healthy",
        params: &[
            param("first", "2s", "time before the first event"),
            param("token", "100ms", "time between tokens"),
        ],
        build: |p| {
            Ok(FaultKind::Latency {
                first: p.duration("first")?,
                token: p.duration("token")?,
            })
        },
    },
];

fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

fn spec(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().find(|k| k.name == name)
}

/// The parameters given for one kind, with the table's defaults behind them.
struct Params<'a> {
    kind: &'static KindSpec,
    given: BTreeMap<&'a str, &'a str>,
}

impl Params<'_> {
    /// The value given, else the default; `None` when neither.
    fn raw(&self, name: &str) -> Option<&str> {
        let default = self
            .kind
            .params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.default)
            .filter(|d| !d.is_empty());
        self.given.get(name).copied().or(default)
    }

    fn bad(&self, name: &str, expected: &str) -> FaultParseError {
        FaultParseError(format!(
            "bad value `{}` for `{name}` in fault `{}`: expected {expected}",
            self.raw(name).unwrap_or_default(),
            self.kind.name
        ))
    }

    fn parsed<T>(
        &self,
        name: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, FaultParseError> {
        self.raw(name)
            .map(|v| parse(v).ok_or_else(|| self.bad(name, expected)))
            .transpose()
    }

    fn required<T>(&self, name: &str, value: Option<T>) -> Result<T, FaultParseError> {
        // Only reachable if the table lacks a default for a parameter the builder requires.
        value.ok_or_else(|| {
            FaultParseError(format!(
                "fault `{}` needs the parameter `{name}`",
                self.kind.name
            ))
        })
    }

    fn opt_duration(&self, name: &str) -> Result<Option<Duration>, FaultParseError> {
        self.parsed(name, "a duration like 500ms, 2s or 1m, up to 24h", |v| {
            parse_duration(v).ok()
        })
    }

    fn duration(&self, name: &str) -> Result<Duration, FaultParseError> {
        let value = self.opt_duration(name)?;
        self.required(name, value)
    }

    fn opt_status(&self, name: &str) -> Result<Option<u16>, FaultParseError> {
        self.parsed(name, "an HTTP error status from 400 to 599", |v| {
            v.parse().ok().filter(|s| (400..=599).contains(s))
        })
    }

    fn status(&self, name: &str) -> Result<u16, FaultParseError> {
        let value = self.opt_status(name)?;
        self.required(name, value)
    }

    fn count(&self, name: &str) -> Result<u32, FaultParseError> {
        let value = self.parsed(name, "a whole number like 5", |v| v.parse().ok())?;
        self.required(name, value)
    }

    fn word(&self, name: &str) -> Result<String, FaultParseError> {
        let value = self.parsed(name, "a word of letters, digits, `_`, `-` or `.`", |v| {
            let ok = !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            ok.then(|| v.to_string())
        })?;
        self.required(name, value)
    }

    /// A kind named by a parameter, with its own defaults (`flap`'s down state).
    fn inner_kind(&self, name: &str) -> Result<FaultKind, FaultParseError> {
        let value = self.raw(name).unwrap_or_default();
        match spec(value) {
            Some(inner) if !matches!(inner.name, "none" | "flap") => (inner.build)(&Params {
                kind: inner,
                given: BTreeMap::new(),
            }),
            _ => Err(self.bad(
                name,
                &format!(
                    "a fault kind other than none and flap: {}",
                    KINDS
                        .iter()
                        .map(|k| k.name)
                        .filter(|n| !matches!(*n, "none" | "flap"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (name, params) = match text.split_once(':') {
            Some((name, params)) => (name.trim(), params),
            None => (text, ""),
        };
        let kind = spec(name).ok_or_else(|| {
            FaultParseError(format!(
                "unknown fault kind `{name}`; valid kinds: {} (see `breakerbox sim --help-faults`)",
                kind_names()
            ))
        })?;
        let mut given = BTreeMap::new();
        for pair in params.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                FaultParseError(format!(
                    "`{pair}` in fault `{name}` is not PARAM=VALUE (write e.g. `{name}:p=0.5`)"
                ))
            })?;
            let (key, value) = (key.trim(), value.trim());
            if key != "p" && !kind.params.iter().any(|p| p.name == key) {
                let valid: Vec<&str> = kind.params.iter().map(|p| p.name).chain(["p"]).collect();
                return Err(FaultParseError(format!(
                    "fault `{name}` has no parameter `{key}`; its parameters: {}",
                    valid.join(", ")
                )));
            }
            if given.insert(key, value).is_some() {
                return Err(FaultParseError(format!(
                    "parameter `{key}` is given twice in fault `{name}`"
                )));
            }
        }
        let params = Params { kind, given };
        let p = params
            .parsed("p", "a probability from 0 to 1, like 0.3", |v| {
                v.parse().ok().filter(|p: &f64| (0.0..=1.0).contains(p))
            })?
            .unwrap_or(1.0);
        Ok(Fault {
            kind: (kind.build)(&params)?,
            p,
        })
    }
}

/// A fault in `KIND[:PARAMS]` form as a file writes it (the config's simulated providers, a
/// scenario's steps), checked while parsing so that errors carry the line.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultString(pub Fault);

impl<'de> serde::Deserialize<'de> for FaultString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Fault>()
            .map(FaultString)
            .map_err(serde::de::Error::custom)
    }
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::None => "none",
            FaultKind::RateLimit { .. } => "rate_limit",
            FaultKind::RateLimitBudget { .. } => "rate_limit_budget",
            FaultKind::Quota => "quota",
            FaultKind::Overloaded { .. } => "overloaded",
            FaultKind::ServerError { .. } => "server_error",
            FaultKind::BadRequest => "bad_request",
            FaultKind::ContextLength => "context_length",
            FaultKind::ContentFilter => "content_filter",
            FaultKind::Auth => "auth",
            FaultKind::ConnectRefused => "connect_refused",
            FaultKind::Reset => "reset",
            FaultKind::NoResponse { .. } => "no_response",
            FaultKind::SlowFirstEvent { .. } => "slow_first_event",
            FaultKind::Stall { .. } => "stall",
            FaultKind::StreamCut { .. } => "stream_cut",
            FaultKind::MidStreamError { .. } => "mid_stream_error",
            FaultKind::Malformed { .. } => "malformed",
            FaultKind::NoDone => "no_done",
            FaultKind::Flap { .. } => "flap",
            FaultKind::Latency { .. } => "latency",
        }
    }

    /// What this fault looks like `elapsed` after it was set, and how long until that changes.
    /// Only `flap` changes over time.
    pub fn at(&self, elapsed: Duration) -> (&FaultKind, Option<Duration>) {
        static HEALTHY: FaultKind = FaultKind::None;
        let FaultKind::Flap { down, up, fault } = self else {
            return (self, None);
        };
        match up {
            None if elapsed < *down => (fault, Some(*down - elapsed)),
            None => (&HEALTHY, None),
            Some(up) => {
                let cycle = down.saturating_add(*up);
                if cycle.is_zero() {
                    return (&HEALTHY, None);
                }
                let pos = elapsed.as_nanos() % cycle.as_nanos();
                let pos = Duration::from_nanos(u64::try_from(pos).unwrap_or(u64::MAX));
                if pos < *down {
                    (fault, Some(*down - pos))
                } else {
                    (&HEALTHY, Some(cycle - pos))
                }
            }
        }
    }

    /// The parameters as written in a fault string, in the table's order.
    fn params(&self) -> Vec<(&'static str, String)> {
        let d = format_duration;
        let mut out = Vec::new();
        match self {
            FaultKind::RateLimit { retry_after } => out.push(("retry_after", d(*retry_after))),
            FaultKind::RateLimitBudget {
                requests,
                tokens,
                per,
            } => {
                out.push(("requests", requests.to_string()));
                out.push(("tokens", tokens.to_string()));
                out.push(("per", d(*per)));
            }
            FaultKind::Overloaded {
                status,
                retry_after,
            } => {
                out.extend(status.map(|s| ("status", s.to_string())));
                out.extend(retry_after.map(|r| ("retry_after", d(r))));
            }
            FaultKind::ServerError { status } => out.push(("status", status.to_string())),
            FaultKind::NoResponse { duration } => out.push(("for", d(*duration))),
            FaultKind::SlowFirstEvent { delay } => out.push(("delay", d(*delay))),
            FaultKind::Stall { after, duration } => {
                out.push(("after", after.to_string()));
                out.push(("for", d(*duration)));
            }
            FaultKind::StreamCut { after } | FaultKind::Malformed { after } => {
                out.push(("after", after.to_string()))
            }
            FaultKind::MidStreamError { after, error_type } => {
                out.push(("after", after.to_string()));
                out.push(("type", error_type.clone()));
            }
            FaultKind::Flap { down, up, fault } => {
                out.push(("down", d(*down)));
                out.extend(up.map(|u| ("up", d(u))));
                out.push(("fault", fault.name().to_string()));
            }
            FaultKind::Latency { first, token } => {
                out.push(("first", d(*first)));
                out.push(("token", d(*token)));
            }
            FaultKind::None
            | FaultKind::Quota
            | FaultKind::BadRequest
            | FaultKind::ContextLength
            | FaultKind::ContentFilter
            | FaultKind::Auth
            | FaultKind::ConnectRefused
            | FaultKind::Reset
            | FaultKind::NoDone => {}
        }
        out
    }
}

/// Every parameter is written out, defaults included, so the string shows what is in force.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut params: Vec<String> = self
            .kind
            .params()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if self.p < 1.0 {
            params.push(format!("p={}", self.p));
        }
        f.write_str(self.kind.name())?;
        if !params.is_empty() {
            write!(f, ":{}", params.join(","))?;
        }
        Ok(())
    }
}

/// The shortest exact form among `1m`, `2s` and `500ms` (sub-millisecond parts are dropped).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms != 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms != 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parse `NAME=KIND[:PARAMS]`, the form of `--fault`.
pub fn parse_assignment(text: &str) -> Result<(String, Fault), FaultParseError> {
    let (name, fault) = text.split_once('=').ok_or_else(|| {
        FaultParseError(format!(
            "`{text}` is not NAME=KIND[:PARAMS] (write e.g. `anthropic=rate_limit:retry_after=5s`)"
        ))
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(FaultParseError(format!(
            "`{text}` names no provider (write e.g. `anthropic=rate_limit`)"
        )));
    }
    Ok((name.to_string(), fault.parse()?))
}

/// The text of `breakerbox sim --help-faults`, generated from the table above.
pub fn help() -> String {
    let mut out = String::from(
        "Fault syntax: KIND[:PARAM=VALUE,...], e.g. `rate_limit:retry_after=5s,p=0.3`.\n\
         Durations are written 500ms, 2s, 1.5s, 1m or 1h.\n\
         Every kind also takes p=PROBABILITY (0 to 1, default 1): the share of requests affected,\n\
         drawn from the seeded generator.\n\
         Set faults with --fault NAME=FAULT, a --scenario file, or at run time:\n\
         \x20 curl -X PUT --data 'overloaded' http://127.0.0.1:PORT/_sim/providers/NAME/fault\n\n\
         Kinds:\n",
    );
    for kind in KINDS {
        out.push_str(&format!("  {:<18}{}\n", kind.name, kind.about));
        for p in kind.params {
            let default = if p.default.is_empty() {
                String::new()
            } else {
                format!(" (default {})", p.default)
            };
            out.push_str(&format!("      {:<14}{}{default}\n", p.name, p.about));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(s: &str) -> Fault {
        s.parse().unwrap()
    }

    fn error(s: &str) -> String {
        s.parse::<Fault>().unwrap_err().to_string()
    }

    #[test]
    fn defaults_come_from_the_table() {
        assert_eq!(
            parse("rate_limit").kind,
            FaultKind::RateLimit {
                retry_after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            parse("stall").kind,
            FaultKind::Stall {
                after: 5,
                duration: Duration::from_secs(600)
            }
        );
        assert_eq!(parse("malformed").kind, FaultKind::Malformed { after: 3 });
        assert_eq!(
            parse("flap").kind,
            FaultKind::Flap {
                down: Duration::from_secs(10),
                up: None,
                fault: Box::new(FaultKind::Overloaded {
                    status: None,
                    retry_after: None
                }),
            }
        );
        assert_eq!(parse("none"), Fault::none());
        assert_eq!(parse(" reset ").p, 1.0);
    }

    #[test]
    fn every_kind_round_trips_with_all_parameters() {
        let texts = [
            "none",
            "rate_limit:retry_after=1500ms,p=0.25",
            "rate_limit_budget:requests=20,tokens=0,per=1m",
            "rate_limit_budget:requests=50,tokens=100000,per=90s",
            "quota",
            "overloaded",
            "overloaded:status=503,retry_after=3s",
            "server_error:status=502",
            "bad_request",
            "context_length",
            "content_filter",
            "auth:p=0.5",
            "connect_refused",
            "reset",
            "no_response:for=30s",
            "slow_first_event:delay=2m",
            "stall:after=0,for=250ms",
            "stream_cut:after=7",
            "mid_stream_error:after=2,type=overloaded_error",
            "mid_stream_error:after=2,type=api_error",
            "malformed:after=1",
            "no_done",
            "flap:down=5s,up=20s,fault=connect_refused",
            "flap:down=10s,fault=overloaded",
            "latency:first=0ms,token=20ms",
        ];
        for text in texts {
            let fault = parse(text);
            assert_eq!(fault.to_string(), text, "display of {text}");
            assert_eq!(parse(&fault.to_string()), fault, "round trip of {text}");
        }
        // Every kind in the table is exercised above.
        for kind in KINDS {
            assert!(
                texts.iter().any(|t| t.split(':').next() == Some(kind.name)),
                "{}",
                kind.name
            );
        }
    }

    #[test]
    fn display_writes_defaults_out() {
        assert_eq!(parse("rate_limit").to_string(), "rate_limit:retry_after=2s");
        assert_eq!(
            parse("stall:for=1.5s").to_string(),
            "stall:after=5,for=1500ms"
        );
        assert_eq!(parse("reset:p=1").to_string(), "reset");
    }

    #[test]
    fn errors_name_the_bad_part_and_list_the_valid_ones() {
        let e = error("overlaoded");
        assert!(e.contains("unknown fault kind `overlaoded`"), "{e}");
        assert!(e.contains("rate_limit") && e.contains("latency"), "{e}");

        let e = error("rate_limit:retry=2s");
        assert!(e.contains("no parameter `retry`"), "{e}");
        assert!(e.contains("retry_after, p"), "{e}");

        let e = error("rate_limit:retry_after=soon");
        assert!(e.contains("`soon`") && e.contains("`retry_after`"), "{e}");
        assert!(e.contains("500ms"), "{e}");

        let e = error("stall:after=-1");
        assert!(e.contains("`after`") && e.contains("whole number"), "{e}");

        let e = error("reset:p=1.5");
        assert!(e.contains("probability"), "{e}");
        let e = error("reset:p=NaN");
        assert!(e.contains("probability"), "{e}");

        for long in [
            "rate_limit:retry_after=25h",
            "no_response:for=9300000000000000000s",
            "latency:token=1441m",
        ] {
            let e = error(long);
            assert!(e.contains("up to 24h"), "{long}: {e}");
        }

        let e = error("server_error:status=200");
        assert!(e.contains("400 to 599"), "{e}");

        let e = error("flap:fault=flap");
        assert!(e.contains("other than none and flap"), "{e}");

        let e = error("flap:down=0s");
        assert!(e.contains("longer than 0"), "{e}");

        let e = error("stall:after");
        assert!(e.contains("PARAM=VALUE"), "{e}");

        let e = error("stall:after=1,after=2");
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn assignments() {
        let (name, fault) = parse_assignment("anthropic=rate_limit:retry_after=5s").unwrap();
        assert_eq!(name, "anthropic");
        assert_eq!(fault.to_string(), "rate_limit:retry_after=5s");
        assert!(parse_assignment("rate_limit").is_err());
        assert!(parse_assignment("=reset").is_err());
        assert!(parse_assignment("openai=nope").is_err());
    }

    #[test]
    fn help_lists_every_kind_and_parameter() {
        let text = help();
        for kind in KINDS {
            assert!(text.contains(kind.name), "{}", kind.name);
            for p in kind.params {
                assert!(text.contains(p.name), "{}.{}", kind.name, p.name);
            }
        }
    }

    #[test]
    fn flap_goes_down_then_up() {
        let s = Duration::from_secs;
        let once = parse("flap:down=10s,fault=reset").kind;
        assert_eq!(once.at(s(0)), (&FaultKind::Reset, Some(s(10))));
        assert_eq!(once.at(s(9)).0, &FaultKind::Reset);
        assert_eq!(once.at(s(10)), (&FaultKind::None, None));
        assert_eq!(once.at(s(1000)).0, &FaultKind::None);

        let cycling = parse("flap:down=10s,up=5s,fault=reset").kind;
        assert_eq!(cycling.at(s(3)), (&FaultKind::Reset, Some(s(7))));
        assert_eq!(cycling.at(s(12)), (&FaultKind::None, Some(s(3))));
        assert_eq!(cycling.at(s(15)), (&FaultKind::Reset, Some(s(10))));
        assert_eq!(cycling.at(s(31)).0, &FaultKind::Reset);

        let steady = FaultKind::Auth;
        assert_eq!(steady.at(s(99)), (&FaultKind::Auth, None));

        // Absurd periods are refused, and must not overflow where they are used.
        let e = error("flap:down=5000000000000h,up=5000000000000h");
        assert!(e.contains("`down`") && e.contains("up to 24h"), "{e}");
        let huge = FaultKind::Flap {
            down: Duration::MAX,
            up: Some(Duration::MAX),
            fault: Box::new(parse("overloaded").kind),
        };
        assert_eq!(
            huge.at(s(1)).0,
            &FaultKind::Overloaded {
                status: None,
                retry_after: None
            }
        );
    }

    #[test]
    fn durations_format_exactly() {
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }
}
