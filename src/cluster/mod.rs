//! A fleet of gateways sharing their breakers through Redis (`[cluster] redis = "redis://…"`).
//!
//! Admission never waits on Redis: every instance decides from its own breakers, and this module
//! keeps them in step in the background.
//!
//! - **Out**: each change of a local breaker (its `breaker_changed` without an `instance`) is
//!   stored in the fleet's hash and published on its channel in one Lua script (stored only when
//!   newer than what the hash holds); an operator's trip, force closed or reset is published too.
//!   Each outcome a closed breaker counts is added to the fleet's counts of that breaker (a script:
//!   consecutive failures and a sliding window of calls and failures), so failures seen by several
//!   instances add up: when the fleet's reach a trigger, this instance opens its breaker, and the
//!   fleet follows it.
//! - **In**: a subscription to the channel. Another instance's change is followed here
//!   ([`Breakers::follow`]; the `breaker_changed` names that instance); its operator's actions
//!   are carried out here (an `operator_action` naming it). Half-open elsewhere means its probe is
//!   out: no probe goes from here until its verdict. Recovery probes take a claim in Redis first,
//!   so one instance probes for the fleet.
//! - **Rate limits**: what a response's rate-limit headers said on one instance (when it changes
//!   what is shown) is published, and the others take it as their own latest observation of that
//!   provider: an account's limits are spent by the whole fleet, so one instance's throttling
//!   steers everyone's new requests.
//! - **Lost**: when Redis is slow or gone, instances carry on with their own breakers; a
//!   `cluster_changed` event says so (the console's header, `breakerbox_cluster_connected`).
//!   The subscription reconnects with backoff; on reconnecting, the instance reads the hash to
//!   catch up and writes the changes it could not send meanwhile.

mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use tokio::sync::{Notify, broadcast, mpsc};

use crate::engine::breaker::{BreakerKey, Counted, ProbeGate};
use crate::engine::shared::Shared;
use crate::engine::throttle::Throttle;
use crate::event::{BreakerState, Event, EventKind, OperatorAction};
use crate::provider::ratelimit::{Allowance, RateLimits};
pub use wire::{Message, What};

/// How long a Redis command may take before the instance carries on without it.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the subscription's connection is pinged; one that does not answer within two
/// command timeouts is taken as lost.
const PING_EVERY: Duration = Duration::from_secs(1);
/// Reconnecting the subscription: the first wait, and the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Changes that could not be written while Redis was away, kept to write on reconnecting: one per
/// breaker, so this bounds nothing but the number of breakers.
const PENDING_KEPT: usize = 1024;

/// Store a breaker's change in the hash and publish it, unless the hash holds a newer one.
/// KEYS: hash, channel. ARGV: field, message, at_ms.
const SET_STATE: &str = r"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local ok, m = pcall(cjson.decode, held)
  if ok and type(m) == 'table' and tonumber(m.at_ms) and tonumber(m.at_ms) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
";

/// Add one call outcome to the fleet's counts of a breaker; returns the consecutive failures and
/// the calls and failures in the window. KEYS: counts hash, calls zset, failures zset.
/// ARGV: failed (0/1), now_ms, window_ms, a unique member.
const COUNT: &str = r"
local consecutive = 0
if ARGV[1] == '1' then
  consecutive = redis.call('HINCRBY', KEYS[1], 'consecutive', 1)
else
  redis.call('HSET', KEYS[1], 'consecutive', 0)
end
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], now, ARGV[4])
if ARGV[1] == '1' then redis.call('ZADD', KEYS[3], now, ARGV[4]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], window) end
return {consecutive, redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])}
";

/// The fleet settings: where its Redis is, the fleet's name (its keys' prefix), this instance's.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `redis://[user:password@]host[:port][/db]`; a secret (it may hold a password): only
    /// [`ClusterConfig::address`] is ever shown.
    pub redis: String,
    pub name: String,
    pub instance: String,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("redis", &self.address())
            .field("name", &self.name)
            .field("instance", &self.instance)
            .finish()
    }
}

impl ClusterConfig {
    /// The Redis server as `host:port`, for people (never the password).
    pub fn address(&self) -> String {
        address(&self.redis).unwrap_or_else(|_| "redis".to_string())
    }
}

/// `host:port` of a `redis://` URL, or what is wrong with it.
pub fn address(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "redis" | "rediss" | "valkey") {
        return Err(format!(
            "`{}:` is not a Redis URL: write redis://HOST:PORT",
            parsed.scheme()
        ));
    }
    if parsed.scheme() == "rediss" {
        return Err(
            "TLS (rediss://) is not supported: use redis:// on a trusted network or a TLS tunnel"
                .to_string(),
        );
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL names no host: write redis://HOST:PORT")?;
    Ok(format!("{host}:{}", parsed.port().unwrap_or(6379)))
}

/// This process's default instance name: the host's, its process id, and a number when one
/// process runs several gateways (tests do).
pub fn default_instance() -> String {
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".to_string());
    let pid = std::process::id();
    match STARTED.fetch_add(1, Ordering::Relaxed) {
        0 => format!("{host}-{pid}"),
        n => format!("{host}-{pid}-{}", n + 1),
    }
}

/// Join the fleet: the tasks that keep `shared`'s breakers in step with the other instances'.
/// Returns at once; Redis is reached in the background. They end when the engine is gone.
pub fn start(config: ClusterConfig, shared: &Shared) -> Result<(), String> {
    address(&config.redis)?;
    let client = redis::Client::open(config.redis.as_str()).map_err(|e| {
        format!(
            "the [cluster] redis URL: {}",
            redact(&e.to_string(), &config)
        )
    })?;
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(BACKOFF_MAX);
    let commands = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
        .map_err(|e| {
            format!(
                "the [cluster] redis connection: {}",
                redact(&e.to_string(), &config)
            )
        })?;
    let link = Arc::new(Link {
        keys: Keys::new(&config.name),
        address: config.address(),
        config,
        commands,
        connected: AtomicBool::new(false),
        announced: Mutex::new(None),
        seen: Mutex::new(HashMap::new()),
        pending: Mutex::new(HashMap::new()),
        members: AtomicU32::new(0),
        breakers: shared.breakers.downgrade(),
        throttle: shared.throttle.clone(),
    });
    shared.breakers.set_probe_gate(Arc::new(Gate {
        link: Arc::downgrade(&link),
    }));
    let reconnected = Arc::new(Notify::new());
    let events = shared.bus.subscribe();
    let counted = shared.breakers.watch_outcomes();
    let observed = shared.throttle.watch_observations();
    tokio::spawn(outbound(
        Arc::clone(&link),
        events,
        counted,
        observed,
        Arc::clone(&reconnected),
    ));
    tokio::spawn(inbound(link, client, reconnected));
    Ok(())
}

/// An error's text without the Redis URL's password, should the client have put it in.
fn redact(text: &str, config: &ClusterConfig) -> String {
    match reqwest::Url::parse(&config.redis) {
        Ok(url) => match url.password() {
            Some(password) if !password.is_empty() => text.replace(password, "***"),
            _ => text.to_string(),
        },
        Err(_) => text.to_string(),
    }
}

/// The fleet's Redis keys.
struct Keys {
    prefix: String,
    /// Hash: breaker field → its latest change (a [`Message`]).
    breakers: String,
    /// Channel: every change and operator action.
    changes: String,
}

impl Keys {
    fn new(name: &str) -> Self {
        Keys {
            prefix: name.to_string(),
            breakers: format!("{name}:breakers"),
            changes: format!("{name}:changes"),
        }
    }

    fn of(&self, what: &str, key: &BreakerKey) -> String {
        format!("{}:{what}:{}", self.prefix, wire::field(key))
    }
}

/// What the tasks share.
struct Link {
    config: ClusterConfig,
    address: String,
    keys: Keys,
    commands: ConnectionManager,
    /// The subscription is up (writes are attempted only then).
    connected: AtomicBool,
    /// What the last `cluster_changed` said (connected or not), to say each change once.
    announced: Mutex<Option<bool>>,
    /// The newest change followed of each breaker (its `at_ms`), so a replay of older ones (the
    /// hash read on reconnecting) changes nothing.
    seen: Mutex<HashMap<String, u64>>,
    /// Changes of ours not written (Redis was away), by breaker.
    pending: Mutex<HashMap<String, Message>>,
    /// Makes each counted outcome a distinct member of the window's sorted sets.
    members: AtomicU32,
    breakers: crate::engine::breaker::WeakBreakers,
    throttle: Throttle,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Link {
    fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Say (once per change) whether the fleet is reachable.
    fn announce(&self, connected: bool, reason: String) {
        self.connected.store(connected, Ordering::Release);
        let mut announced = lock(&self.announced);
        if *announced == Some(connected) {
            return;
        }
        *announced = Some(connected);
        if connected {
            tracing::info!(redis = %self.address, instance = %self.config.instance, "fleet: connected");
        } else {
            tracing::warn!(redis = %self.address, %reason, "fleet: lost; breakers are this instance's own");
        }
        if let Some(breakers) = self.breakers.upgrade() {
            breakers.bus().publish(EventKind::ClusterChanged {
                instance: self.config.instance.clone(),
                connected,
                redis: self.address.clone(),
                reason: redact(&reason, &self.config),
            });
        }
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut con = self.commands.clone();
        self.within(cmd.query_async::<T>(&mut con)).await
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, String> {
        let mut con = self.commands.clone();
        self.within(invocation.invoke_async::<T>(&mut con)).await
    }

    /// A Redis call's answer within [`COMMAND_TIMEOUT`], its error without the URL's password.
    async fn within<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, String> {
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(redact(&e.to_string(), &self.config)),
            Err(_) => Err("Redis did not answer in time".to_string()),
        }
    }

    /// Publish `what` on the fleet's channel (not stored: only breaker changes are).
    async fn publish(&self, what: What) -> Result<(), String> {
        if !self.connected() {
            return Err("the fleet is not reachable".to_string());
        }
        let text = serde_json::to_string(&self.message(what)).map_err(|e| e.to_string())?;
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(&self.keys.changes).arg(text);
        self.run::<i64>(&publish).await.map(|_| ())
    }

    fn message(&self, what: What) -> Message {
        Message {
            v: wire::VERSION,
            from: self.config.instance.clone(),
            at_ms: wire::now_ms(),
            what,
        }
    }

    /// Store and publish one change of ours; kept for later when Redis is away.
    async fn send_state(&self, message: Message) {
        let Some(key) = message.key() else { return };
        let field = wire::field(&key);
        if !self.connected() {
            self.keep(field, message);
            return;
        }
        let Ok(text) = serde_json::to_string(&message) else {
            return;
        };
        let script = redis::Script::new(SET_STATE);
        let mut invocation = script.key(&self.keys.breakers);
        invocation
            .key(&self.keys.changes)
            .arg(&field)
            .arg(&text)
            .arg(message.at_ms);
        match self.script::<i64>(&invocation).await {
            Ok(_) => {
                // A closed breaker starts counting afresh, fleet-wide as here.
                if matches!(
                    &message.what,
                    What::State {
                        to: BreakerState::Closed,
                        ..
                    }
                ) {
                    let mut del = redis::cmd("DEL");
                    for what in ["counts", "calls", "fails"] {
                        del.arg(self.keys.of(what, &key));
                    }
                    let _ = self.run::<i64>(&del).await;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "fleet: a breaker change was not written");
                self.keep(field, message);
            }
        }
    }

    fn keep(&self, field: String, message: Message) {
        let mut pending = lock(&self.pending);
        if pending.len() < PENDING_KEPT || pending.contains_key(&field) {
            pending.insert(field, message);
        }
    }

    async fn send_operator(&self, action: OperatorAction, provider: String) {
        // Away from the fleet, the breaker change it made reaches the others on reconnecting.
        if !self.connected() {
            return;
        }
        if let Err(e) = self.publish(What::Operator { action, provider }).await {
            tracing::warn!(error = %e, "fleet: an operator's action did not reach the fleet");
        }
    }

    /// Publish what a response here said of a provider's rate limits.
    async fn send_limits(&self, key: BreakerKey, limits: &RateLimits) {
        let limits = limits
            .allowances
            .iter()
            .map(crate::engine::throttle::rate_limit)
            .collect();
        // Lost with the fleet: the next response says it again.
        let _ = self
            .publish(What::Limits {
                provider: key.provider,
                model: key.model,
                limits,
            })
            .await;
    }

    /// Add one counted outcome to the fleet's, and open here when the fleet's reach a trigger.
    async fn count(&self, counted: Counted) {
        if !self.connected() {
            return;
        }
        let Some(breakers) = self.breakers.upgrade() else {
            return;
        };
        let config = breakers.config_of(&counted.key);
        let window_ms = u64::try_from(config.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let member = format!(
            "{}:{}",
            self.config.instance,
            self.members.fetch_add(1, Ordering::Relaxed)
        );
        let script = redis::Script::new(COUNT);
        let mut invocation = script.key(self.keys.of("counts", &counted.key));
        invocation
            .key(self.keys.of("calls", &counted.key))
            .key(self.keys.of("fails", &counted.key))
            .arg(u8::from(counted.failed))
            .arg(wire::now_ms())
            .arg(window_ms)
            .arg(member);
        let Ok((consecutive, calls, failures)) = self.script::<(u64, u64, u64)>(&invocation).await
        else {
            return;
        };
        if !counted.failed {
            return;
        }
        let threshold = u64::from(config.consecutive_failures);
        let reason = if threshold > 0 && consecutive >= threshold {
            Some(format!(
                "{consecutive} consecutive failures across the fleet"
            ))
        } else if calls >= u64::from(config.min_calls.max(1))
            && failures as f64 / calls as f64 >= config.failure_rate
        {
            Some(format!(
                "failure rate {:.0}% over {calls} calls across the fleet",
                failures as f64 * 100.0 / calls as f64
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            breakers.open_for_fleet(&counted.key, reason);
        }
    }

    /// Follow one message from another instance.
    fn follow(&self, message: Message) {
        if message.v != wire::VERSION || message.from == self.config.instance {
            return;
        }
        let Some(breakers) = self.breakers.upgrade() else {
            return;
        };
        match message.what {
            What::State {
                provider,
                model,
                to,
                reason,
                open_ms,
                by_operator,
            } => {
                if !breakers.knows(&provider) {
                    return;
                }
                let key = BreakerKey { provider, model };
                let field = wire::field(&key);
                {
                    let mut seen = lock(&self.seen);
                    if seen.get(&field).is_some_and(|&at| at >= message.at_ms) {
                        return;
                    }
                    seen.insert(field, message.at_ms);
                }
                let elapsed = wire::now_ms().saturating_sub(message.at_ms);
                let open_for = open_ms.map(|ms| Duration::from_millis(ms.saturating_sub(elapsed)));
                // Its open period is over: it is half-open there by now, or soon.
                if to == BreakerState::Open && open_for.is_some_and(|d| d.is_zero()) {
                    return;
                }
                breakers.follow(&key, to, reason, open_for, by_operator, &message.from);
            }
            What::Limits {
                provider,
                model,
                limits,
            } => {
                if !breakers.knows(&provider) {
                    return;
                }
                let elapsed = wire::now_ms().saturating_sub(message.at_ms);
                let allowances = limits
                    .into_iter()
                    .map(|l| Allowance {
                        dimension: l.dimension,
                        limit: l.limit,
                        remaining: l.remaining,
                        reset: l
                            .reset_ms
                            .map(|ms| Duration::from_millis(ms.saturating_sub(elapsed))),
                    })
                    .collect();
                self.throttle
                    .observe_from_fleet(&BreakerKey { provider, model }, RateLimits { allowances });
            }
            What::Operator { action, provider } => {
                if !breakers.knows(&provider) {
                    return;
                }
                let changed = breakers.operate_for(action, &provider, &message.from);
                let forgot = action == OperatorAction::Reset && self.throttle.forget(&provider);
                breakers.bus().publish(EventKind::OperatorAction {
                    action,
                    provider: Some(provider),
                    detail: if changed || forgot {
                        String::new()
                    } else {
                        "no change".to_string()
                    },
                    instance: Some(message.from),
                });
            }
        }
    }

    /// Catch up with the fleet's hash (on connecting); how many breakers it held.
    async fn resync(&self) -> Result<usize, String> {
        let mut hgetall = redis::cmd("HGETALL");
        hgetall.arg(&self.keys.breakers);
        let held: HashMap<String, String> = self.run(&hgetall).await?;
        let n = held.len();
        for text in held.into_values() {
            if let Ok(message) = serde_json::from_str::<Message>(&text) {
                self.follow(message);
            }
        }
        Ok(n)
    }

    /// Write what could not be written while Redis was away.
    async fn flush(&self) {
        let pending: Vec<Message> = lock(&self.pending).drain().map(|(_, m)| m).collect();
        for message in pending {
            self.send_state(message).await;
        }
    }
}

/// Local changes out to the fleet.
async fn outbound(
    link: Arc<Link>,
    mut events: broadcast::Receiver<Arc<Event>>,
    mut counted: mpsc::Receiver<Counted>,
    mut observed: mpsc::Receiver<(BreakerKey, RateLimits)>,
    reconnected: Arc<Notify>,
) {
    let mut alive = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => on_local(&link, &event.kind).await,
                // Missed some: what matters (the breakers' states) is written as they are.
                Err(broadcast::error::RecvError::Lagged(_)) => resend_states(&link).await,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Some(c) = counted.recv() => link.count(c).await,
            Some((key, limits)) = observed.recv() => link.send_limits(key, &limits).await,
            () = reconnected.notified() => link.flush().await,
            _ = alive.tick() => {
                if link.breakers.upgrade().is_none() {
                    return;
                }
            }
        }
    }
}

async fn on_local(link: &Link, kind: &EventKind) {
    match kind {
        EventKind::BreakerChanged {
            provider,
            model,
            to,
            reason,
            recovery_ms,
            instance: None,
            ..
        } => {
            let message = link.message(What::State {
                provider: provider.clone(),
                model: model.clone(),
                to: *to,
                reason: reason.clone(),
                open_ms: *recovery_ms,
                by_operator: reason.starts_with("operator"),
            });
            link.send_state(message).await;
        }
        EventKind::OperatorAction {
            action:
                action @ (OperatorAction::Trip | OperatorAction::ForceClosed | OperatorAction::Reset),
            provider: Some(provider),
            instance: None,
            ..
        } => link.send_operator(*action, provider.clone()).await,
        _ => {}
    }
}

/// After missing local events: every breaker of ours that turns requests away (or is held by an
/// operator), as it is now. A closed one is not resent: stamped now, it would undo a newer opening
/// elsewhere; an opening missed the other way heals by its own recovery.
async fn resend_states(link: &Link) {
    let Some(breakers) = link.breakers.upgrade() else {
        return;
    };
    for (key, state) in breakers.states() {
        if state == BreakerState::Closed {
            continue;
        }
        let open_ms = breakers
            .snapshot(&key)
            .open_remaining
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let message = link.message(What::State {
            provider: key.provider.clone(),
            model: key.model.clone(),
            to: state,
            reason: "resent after a gap".to_string(),
            open_ms,
            by_operator: matches!(state, BreakerState::ForcedOpen | BreakerState::ForcedClosed),
        });
        link.send_state(message).await;
    }
}

/// The fleet's changes in, reconnecting with backoff; catches up on each connection.
async fn inbound(link: Arc<Link>, client: redis::Client, reconnected: Arc<Notify>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        if link.breakers.upgrade().is_none() {
            return;
        }
        match subscribe(&link, &client).await {
            Ok(pubsub) => match link.resync().await {
                Ok(n) => {
                    link.announce(
                        true,
                        format!("connected; the fleet holds {n} breaker states"),
                    );
                    backoff = BACKOFF_MIN;
                    reconnected.notify_one();
                    let why = listen(&link, pubsub).await;
                    link.announce(false, format!("lost: {why}"));
                }
                Err(e) => link.announce(false, format!("lost: {e}")),
            },
            Err(e) => link.announce(false, format!("cannot connect: {e}")),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn subscribe(link: &Link, client: &redis::Client) -> Result<redis::aio::PubSub, String> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&link.keys.changes).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(COMMAND_TIMEOUT * 2, connect).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(redact(&e.to_string(), &link.config)),
        Err(_) => Err("Redis did not answer in time".to_string()),
    }
}

/// Follow the channel until the connection ends, stops answering a ping, or the engine is gone.
async fn listen(link: &Link, pubsub: redis::aio::PubSub) -> String {
    let (mut sink, mut messages) = pubsub.split();
    let mut alive = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => {
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    match serde_json::from_str::<Message>(&text) {
                        Ok(message) => link.follow(message),
                        Err(e) => tracing::debug!(error = %e, "fleet: a message not understood"),
                    }
                }
                None => return "the connection closed".to_string(),
            },
            _ = alive.tick() => {
                if link.breakers.upgrade().is_none() {
                    return "this gateway is stopping".to_string();
                }
                // A connection that went silent without closing (a partition, a frozen server)
                // would otherwise look connected for ever.
                match tokio::time::timeout(COMMAND_TIMEOUT * 2, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return redact(&e.to_string(), &link.config),
                    Err(_) => return "Redis stopped answering (no reply to a ping)".to_string(),
                }
            }
        }
    }
}

/// One recovery probe for the fleet: a claim in Redis (`SET … NX PX`) before each.
struct Gate {
    link: Weak<Link>,
}

impl ProbeGate for Gate {
    fn claim(&self, key: &BreakerKey, hold: Duration) -> BoxFuture<'static, bool> {
        let link = self.link.upgrade();
        let key = key.clone();
        Box::pin(async move {
            let Some(link) = link else { return true };
            // Alone, this instance probes for itself.
            if !link.connected() {
                return true;
            }
            let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut set = redis::cmd("SET");
            set.arg(link.keys.of("probe", &key))
                .arg(&link.config.instance)
                .arg("NX")
                .arg("PX")
                .arg(hold_ms);
            match link.run::<Option<String>>(&set).await {
                Ok(claimed) => claimed.is_some(),
                Err(_) => true,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_redis_url_is_shown_as_its_address_and_never_its_password() {
        assert_eq!(address("redis://127.0.0.1:6390").unwrap(), "127.0.0.1:6390");
        assert_eq!(
            address("redis://:s3cret@cache.internal/2").unwrap(),
            "cache.internal:6379"
        );
        let config = ClusterConfig {
            redis: "redis://user:s3cret@cache.internal:6380".into(),
            name: "breakerbox".into(),
            instance: "gw-1".into(),
        };
        assert_eq!(config.address(), "cache.internal:6380");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(
            redact("auth failed for s3cret", &config),
            "auth failed for ***"
        );
        for bad in ["http://x", "redis://", "not a url", "rediss://x:1"] {
            assert!(address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instances_of_one_process_have_distinct_default_names() {
        let (a, b) = (default_instance(), default_instance());
        assert_ne!(a, b);
        assert!(b.contains(&std::process::id().to_string()), "{b}");
    }
}
