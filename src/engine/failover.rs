//! The failover engine: a request goes down an ordered chain of targets and comes back complete from
//! whichever could answer.
//!
//! ```text
//!  request ─► target 1 ─ breaker admits? ─► attempt ─► first healthy event? ─► commit, stream ─► done
//!               │            │ no: skip                  │ no: classify                 │ mid-stream failure:
//!               │            ▼                           ▼                              ▼ restart / continue / fail
//!               └──────► target 2 … ◄── retry here (backoff, retry-after, budgets) or fail over
//! ```
//!
//! Every step is an event on the bus. The engine is itself a [`Provider`], so engines compose.
//!
//! This module is the engine's face ([`FailoverEngine`], [`RequestMeta`]) and names what a caller
//! needs from its neighbours: the chain's parts ([`super::chain`]), what engines share
//! ([`super::shared`]) and the pure decisions ([`super::decide`]). A request's walk down the chain is
//! `super::run`, with `super::hedge` and `super::mid_stream`.

use std::sync::Arc;
use tokio::sync::mpsc;

use crate::engine::progress::Progress;
use crate::engine::run::Run;
use crate::event::Source;
use crate::provider::{Provider, ProviderStream, Request};

pub use crate::engine::chain::{
    EngineSettings, HedgeTrigger, MidStreamPolicy, Target, WhenAllOpen,
};
pub use crate::engine::decide::{Facts, Step, next_step};
pub use crate::engine::shared::{ProviderTotals, Shared};

/// How a request entered the engine.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub source: Source,
    /// A request id to use; the engine numbers requests itself when `None`.
    pub request_id: Option<String>,
    /// The prompt text for `request_started`, when content may be recorded.
    pub prompt: Option<String>,
    /// The chain the caller asked for by name (the gateway's `x-breakerbox-chain`), for
    /// `request_started`; the engine is that chain's already.
    pub chain_name: Option<String>,
    /// False: the request goes to the chain's first target only (retries there included, no
    /// hedge, no other target), and `request_started` says so.
    pub failover: bool,
    /// Whether the caller asked for a streamed reply, for `request_started` (the gateway's
    /// clients say; `None` for breakerbox's own callers).
    pub stream: Option<bool>,
}

impl RequestMeta {
    pub fn new(source: Source) -> Self {
        RequestMeta {
            source,
            request_id: None,
            prompt: None,
            chain_name: None,
            failover: true,
            stream: None,
        }
    }
}

/// An ordered chain of targets with its settings. Cheap to clone.
#[derive(Clone)]
pub struct FailoverEngine {
    pub(super) name: String,
    pub(super) targets: Arc<Vec<Target>>,
    pub(super) settings: Arc<EngineSettings>,
    pub(super) shared: Shared,
    /// The source reported for requests that come through the `Provider` interface.
    source: Source,
}

/// Items the engine sends its caller; capacity bounds how far the engine runs ahead of a slow one.
pub(super) const OUT_CAPACITY: usize = 64;

impl FailoverEngine {
    pub fn new(
        name: impl Into<String>,
        targets: Vec<Target>,
        settings: EngineSettings,
        shared: Shared,
    ) -> Self {
        for target in &targets {
            shared.breakers.register(&target.breaker_key);
            shared.probe_targets.register(
                &target.breaker_key,
                target.provider.clone(),
                target.model.as_deref().unwrap_or_default(),
            );
        }
        FailoverEngine {
            name: name.into(),
            targets: Arc::new(targets),
            settings: Arc::new(settings),
            shared,
            source: Source::Ask,
        }
    }

    /// The source `request_started` names for requests sent through [`Provider::stream`].
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The same engine (settings, breakers, bus) over other targets.
    pub fn with_targets(&self, targets: Vec<Target>) -> Self {
        FailoverEngine {
            targets: Arc::new(targets),
            ..self.clone()
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Send a request down the chain. Returns its id and the stream of the answer: events of the
    /// committed target, `StreamEvent::Rewind` when a partial reply is withdrawn, and a final `Done`
    /// or `Err`. Dropping the stream cancels the request.
    pub fn send(&self, request: Request, meta: RequestMeta) -> (String, ProviderStream) {
        let (request_id, stream, _) = self.send_watched(request, meta);
        (request_id, stream)
    }

    /// [`FailoverEngine::send`], with the request's [`Progress`]: who its events come from and
    /// after how many attempts.
    pub fn send_watched(
        &self,
        request: Request,
        meta: RequestMeta,
    ) -> (String, ProviderStream, Progress) {
        let request_id = meta
            .request_id
            .clone()
            .unwrap_or_else(|| self.shared.next_request_id());
        let (tx, rx) = mpsc::channel(OUT_CAPACITY);
        let progress = Progress::default();
        let run = Run {
            engine: self.clone(),
            request_id: request_id.clone(),
            out: tx,
            progress: progress.clone(),
        };
        tokio::spawn(run.drive(request, meta));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (request_id, Box::pin(stream), progress)
    }
}

impl Provider for FailoverEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn default_model(&self) -> &str {
        self.targets.first().map_or("", |t| {
            t.model.as_deref().unwrap_or(t.provider.default_model())
        })
    }

    fn stream(&self, request: Request) -> ProviderStream {
        self.send(request, RequestMeta::new(self.source)).1
    }
}
