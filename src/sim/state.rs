//! The live state of each simulated provider: the fault in force, counters, and the request log.

use crate::sync::lock;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

use super::fault::{Fault, FaultKind};
use super::rng::{Rng, hash, mix};
use super::wire::Meta;
use super::{SimError, SimProviderSpec};
use crate::provider::Protocol;

/// How many finished requests `GET /_sim/log` can show.
const LOG_CAPACITY: usize = 1000;

/// A fault and when it was set (where `flap`'s cycle starts).
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub fault: Fault,
    pub since: Instant,
}

pub(crate) struct ProviderState {
    pub spec: SimProviderSpec,
    /// Seeds this provider's replies (the simulator's seed mixed with the name).
    pub seed: u64,
    pub base_url: String,
    pub direct_base_url: String,
    /// Whether the direct port is listening (it is closed while refusing connections).
    pub direct_listening: AtomicBool,
    fault: watch::Sender<ActiveFault>,
    /// The window a `rate_limit_budget` is being spent in.
    pub budget: super::budget::Window,
    requests: AtomicU64,
    active: AtomicU64,
    outcomes: Mutex<BTreeMap<&'static str, u64>>,
    log: Arc<RequestLog>,
}

/// One finished request, as `GET /_sim/log` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// When the request arrived (RFC 3339).
    pub time: String,
    pub request_id: String,
    pub provider: String,
    pub model: String,
    pub stream: bool,
    /// The fault the request met (`none` when healthy; for `flap`, what it showed).
    pub fault: String,
    /// `ok`, the fault's kind, `invalid_request`, or `client_gone` when the client hung up first.
    pub outcome: String,
    /// The HTTP status sent, if any was.
    pub status: Option<u16>,
    pub elapsed_ms: u64,
}

/// A provider as `GET /_sim/providers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderStatus {
    pub name: String,
    pub protocol: Protocol,
    pub model: String,
    /// The fault in force, as a fault string.
    pub fault: String,
    /// What that fault looks like right now (`flap` alternates between its fault and `none`).
    pub fault_now: String,
    pub base_url: String,
    pub direct_base_url: String,
    pub direct_listening: bool,
    pub requests: u64,
    /// Requests being answered now (streams open, clients waiting).
    pub active: u64,
    /// Finished requests by outcome.
    pub outcomes: BTreeMap<String, u64>,
}

impl ProviderState {
    pub fn new(
        spec: SimProviderSpec,
        sim_seed: u64,
        base_url: String,
        direct_base_url: String,
        log: Arc<RequestLog>,
    ) -> Self {
        let fault = watch::Sender::new(ActiveFault {
            fault: spec.fault.clone(),
            since: Instant::now(),
        });
        ProviderState {
            seed: mix(&[sim_seed, hash(&[spec.name.as_bytes()])]),
            spec,
            base_url,
            direct_base_url,
            direct_listening: AtomicBool::new(true),
            fault,
            budget: super::budget::Window::default(),
            requests: AtomicU64::new(0),
            active: AtomicU64::new(0),
            outcomes: Mutex::new(BTreeMap::new()),
            log,
        }
    }

    pub fn fault(&self) -> Fault {
        self.fault.borrow().fault.clone()
    }

    pub fn set_fault(&self, fault: Fault) {
        tracing::info!(provider = %self.spec.name, %fault, "sim fault set");
        // A budget set anew starts whole, even one with the same numbers.
        self.budget.clear();
        self.fault.send_replace(ActiveFault {
            fault,
            since: Instant::now(),
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<ActiveFault> {
        self.fault.subscribe()
    }

    /// Count a request and draw what it meets: the fault (by its probability) and a generator
    /// seeded from this provider, the request's number and its prompt.
    pub fn draw(&self, prompt: &str) -> (FaultKind, Rng) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut rng = Rng::new(mix(&[self.seed, n, hash(&[prompt.as_bytes()])]));
        let active = self.fault.borrow();
        let hit = active.fault.p >= 1.0 || rng.chance(active.fault.p);
        let kind = if hit {
            active.fault.kind.at(active.since.elapsed()).0.clone()
        } else {
            FaultKind::None
        };
        (kind, rng)
    }

    /// Whether the direct port should refuse connections now, and when that may change. Only a
    /// certain fault (p = 1) closes the port; a probable one is decided per request (a reset).
    pub fn refuses_connections(&self) -> (bool, Option<Duration>) {
        let active = self.fault.borrow();
        if active.fault.p < 1.0 {
            return (false, None);
        }
        let (kind, change_in) = active.fault.kind.at(active.since.elapsed());
        (*kind == FaultKind::ConnectRefused, change_in)
    }

    /// Start the record of one request; it is written when the [`Tracker`] finishes or drops.
    pub fn track(self: &Arc<Self>, meta: &Meta, stream: bool, fault: &FaultKind) -> Tracker {
        self.active.fetch_add(1, Ordering::Relaxed);
        Tracker {
            provider: Arc::clone(self),
            record: Some(RequestRecord {
                time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                request_id: meta.request_id.clone(),
                provider: self.spec.name.clone(),
                model: meta.model.clone(),
                stream,
                fault: fault.name().to_string(),
                outcome: String::new(),
                status: None,
                elapsed_ms: 0,
            }),
            started: Instant::now(),
            status: None,
            outcome: match fault {
                // A budget answers until it is spent (then the outcome is `rate_limit`).
                FaultKind::None | FaultKind::RateLimitBudget { .. } => "ok",
                other => other.name(),
            },
        }
    }

    pub fn status(&self) -> ProviderStatus {
        let active = self.fault.borrow();
        ProviderStatus {
            name: self.spec.name.clone(),
            protocol: self.spec.protocol,
            model: self.spec.model.clone(),
            fault: active.fault.to_string(),
            fault_now: active
                .fault
                .kind
                .at(active.since.elapsed())
                .0
                .name()
                .to_string(),
            base_url: self.base_url.clone(),
            direct_base_url: self.direct_base_url.clone(),
            direct_listening: self.direct_listening.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            outcomes: lock(&self.outcomes)
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

/// The record of one request in flight. Dropping it unfinished means the client went away.
pub(crate) struct Tracker {
    provider: Arc<ProviderState>,
    record: Option<RequestRecord>,
    started: Instant,
    status: Option<u16>,
    /// `ok` or the fault's kind: what the request ends as unless the client leaves first.
    outcome: &'static str,
}

impl Tracker {
    /// The status line has gone out (a stream has started).
    pub fn sent_status(&mut self, status: u16) {
        self.status = Some(status);
    }

    /// The answer is complete (as far as the fault lets it be).
    pub fn finish(mut self, status: Option<u16>) {
        self.status = status;
        self.write(self.outcome);
    }

    /// The request was refused with `status`, ending as `outcome` (a spent budget's 429).
    pub fn refuse(mut self, status: u16, outcome: &'static str) {
        self.status = Some(status);
        self.outcome = outcome;
        self.write(outcome);
    }

    /// The request was refused as invalid.
    pub fn reject(mut self) {
        self.status = Some(400);
        self.write("invalid_request");
    }

    fn write(&mut self, outcome: &'static str) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        record.outcome = outcome.to_string();
        record.status = self.status;
        record.elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            provider = %record.provider,
            request_id = %record.request_id,
            fault = %record.fault,
            outcome,
            status = ?record.status,
            elapsed_ms = record.elapsed_ms,
            "sim request"
        );
        *lock(&self.provider.outcomes).entry(outcome).or_default() += 1;
        self.provider.log.push(record);
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.write("client_gone");
        self.provider.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The most recent finished requests of all providers.
#[derive(Default)]
pub(crate) struct RequestLog(Mutex<VecDeque<RequestRecord>>);

impl RequestLog {
    fn push(&self, record: RequestRecord) {
        let mut log = lock(&self.0);
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(record);
    }

    /// The last `limit` records, oldest first.
    pub fn recent(&self, limit: usize) -> Vec<RequestRecord> {
        let log = lock(&self.0);
        log.iter()
            .skip(log.len().saturating_sub(limit))
            .cloned()
            .collect()
    }
}

/// Everything the simulator's tasks share.
pub(crate) struct SimState {
    pub providers: Vec<Arc<ProviderState>>,
    pub log: Arc<RequestLog>,
}

impl SimState {
    pub fn provider(&self, name: &str) -> Result<&Arc<ProviderState>, SimError> {
        self.providers
            .iter()
            .find(|p| p.spec.name == name)
            .ok_or_else(|| SimError::UnknownProvider(name.to_string()))
    }

    pub fn names(&self) -> String {
        self.providers
            .iter()
            .map(|p| p.spec.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
