//! Configuration: every invalid value is refused at load with its file, line, column and field;
//! every valid one builds an engine whose deadlines and backoffs cannot overflow; and a config at
//! the largest values allowed runs requests through the simulator without a panic or a hang.

use crate::support::demo_config::paced_sim;
use std::time::Duration;

use breakerbox::cli::CommonArgs;
use breakerbox::config::{Config, SAMPLE};
use breakerbox::engine::breaker::{Breaker, CallOutcome};
use breakerbox::engine::retry::{Backoff, RetryBudget, RetryDecision, decide};
use breakerbox::event::{Bus, Source};
use breakerbox::provider::http::MAX_RETRY_AFTER;
use breakerbox::provider::{Request, StreamEvent};
use breakerbox::session::setup;
use futures::StreamExt;
use proptest::prelude::*;
use tokio::time::Instant;

/// `(line, column)` when `err` starts `origin:LINE:COLUMN: `.
fn location(err: &str, origin: &str) -> Option<(usize, usize)> {
    let rest = err.strip_prefix(origin)?.strip_prefix(':')?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let column = parts.next()?.parse().ok()?;
    parts.next()?.starts_with(' ').then_some((line, column))
}

/// A case of the table: the config with `^` just before where the error must point, the field it
/// must name, and a part of what it must say.
type Case = (&'static str, &'static str, &'static str);

const PROVIDER: &str = "[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\n";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Durations: the issue's overflow, and every time limit's range.
    ("[timeouts]\ntotal = ^\"9300000000000000000s\"\n", "timeouts.total", "the longest allowed is 24h"),
    ("[timeouts]\ntotal = ^\"25h\"\n", "timeouts.total", "the longest allowed is 24h"),
    ("[timeouts]\nconnect = ^\"0s\"\n", "timeouts.connect", "from 1ms to 24h"),
    ("[timeouts]\nheaders = ^\"0.1ms\"\n", "timeouts.headers", "from 1ms to 24h"),
    ("[timeouts]\nfirst_event = ^5\n", "timeouts.first_event", "with a unit, like \"5s\""),
    ("[timeouts]\nidle = ^\"-1s\"\n", "timeouts.idle", "invalid duration"),
    ("[timeouts]\n^conect = \"5s\"\n", "timeouts.conect", "unknown field"),
    // The breaker.
    ("[breaker]\nfailure_rate = ^1.5\n", "breaker.failure_rate", "a fraction from 0 to 1"),
    ("[breaker]\nfailure_rate = ^nan\n", "breaker.failure_rate", "a fraction from 0 to 1"),
    ("[breaker]\nfailure_rate = ^-0.1\n", "breaker.failure_rate", "a fraction from 0 to 1"),
    ("[breaker]\nfailure_rate = ^inf\n", "breaker.failure_rate", "a fraction from 0 to 1"),
    ("[breaker]\nhalf_open_probes = ^0\n", "breaker.half_open_probes", "from 1 to 1000"),
    ("[breaker]\nhalf_open_probes = ^1001\n", "breaker.half_open_probes", "from 1 to 1000"),
    ("[breaker]\nrecovery_growth = ^0.5\n", "breaker.recovery_growth", "a factor (1 = no growth) from 1 to 100"),
    ("[breaker]\nrecovery_growth = ^nan\n", "breaker.recovery_growth", "from 1 to 100"),
    ("[breaker]\nrecovery_growth = ^1e300\n", "breaker.recovery_growth", "from 1 to 100"),
    ("[breaker]\nconsecutive_failures = ^-1\n", "breaker.consecutive_failures", "from 0 to 1000000"),
    ("[breaker]\nmin_calls = ^4294967296\n", "breaker.min_calls", "from 0 to 1000000"),
    ("[breaker]\nwindow = ^\"0ms\"\n", "breaker.window", "from 1ms to 24h"),
    ("[breaker]\nrecovery = ^\"48h\"\n", "breaker.recovery", "24h"),
    ("[breaker]\nrecovery_max = ^\"9300000000000000000s\"\n", "breaker.recovery_max", "24h"),
    ("[breaker]\nopen_on_retry_after = ^\"2d\"\n", "breaker.open_on_retry_after", "or `off`"),
    // Retries.
    ("[retry]\nmax_attempts = ^0\n", "retry.max_attempts", "from 1 to 10000"),
    ("[retry]\nmax_retries = ^101\n", "retry.max_retries", "from 0 to 100"),
    ("[retry]\nmax_retries = ^2.5\n", "retry.max_retries", "2.5 is not a whole number"),
    ("[retry]\nmax_retries = ^\"2\"\n", "retry.max_retries", "expected a whole number"),
    ("[retry]\nmin_delay = ^\"2h\"\n", "retry.min_delay", "from 0s to 1h"),
    ("[retry]\nmax_delay = ^\"9300000000000000000s\"\n", "retry.max_delay", "24h"),
    ("[retry]\nretry_after_cap = ^\"61m\"\n", "retry.retry_after_cap", "from 0s to 1h"),
    ("[retry]\nfactor = ^0.5\n", "retry.factor", "from 1 to 100"),
    ("[retry]\nfactor = ^inf\n", "retry.factor", "from 1 to 100"),
    ("[retry]\nbudget_capacity = ^-1\n", "retry.budget_capacity", "from 0 to 1000000"),
    ("[retry]\nbudget_capacity = ^nan\n", "retry.budget_capacity", "from 0 to 1000000"),
    ("[retry]\nbudget_refill_per_sec = ^inf\n", "retry.budget_refill_per_sec", "from 0 to 1000000"),
    // Console keys: checked after deserialization, found by their path.
    ("[keys]\nquit = \"x\"\ntrip = ^\"x\"\n", "keys", "bound to both `quit` and `trip`"),
    ("[keys]\nnope = ^\"x\"\n", "keys.nope", "no such action"),
    // Providers.
    ("providers = ^[]\n", "providers", "the list is empty"),
    ("[[providers]]\nname = ^\"\"\nprotocol = \"openai\"\nmodel = \"m\"\n", "providers.name", "not a valid name"),
    ("[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = ^\" \"\n", "providers.model", "is empty"),
    ("[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\nbase_url = ^\"\"\n", "providers.base_url", "is not a URL"),
    ("[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\nbase_url = ^\"ftp://h/v1\"\n", "providers.base_url", "not an http:// or https:// URL"),
    ("[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\napi_key_env = ^\"\"\n", "providers.api_key_env", "not an environment variable name"),
    ("[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\nbase_url_env = ^\"MY URL\"\n", "providers.base_url_env", "not an environment variable name"),
    ("[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\ncontext_window = ^0\n", "providers.context_window", "1 or more"),
    ("[[providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = \"m\"\n\n[[providers]]\nname = ^\"a\"\nprotocol = \"openai\"\nmodel = \"m\"\n", "providers.name", "declared twice"),
    ("[[providers]]\nname = \"a\"\nprotocol = ^\"cohere\"\nmodel = \"m\"\n", "providers.protocol", "unknown variant"),
    ("^[[providers]]\nname = \"a\"\nprotocol = \"openai\"\n", "providers", "missing field `model`"),
    // Chains and routes.
    ("[[chains]]\nname = ^\"\"\ntargets = [\"openai\"]\n", "chains.name", "not a valid name"),
    ("[[chains]]\nname = \"c\"\ntargets = ^[]\n", "chains.targets", "has none"),
    ("[[chains]]\nname = \"c\"\ntargets = [^\"nobody\"]\n", "chains.targets", "no provider is named `nobody`"),
    ("[[chains]]\nname = \"c\"\ntargets = [^{ provider = \"openai\", model = \"\" }]\n", "chains.targets", "is empty"),
    ("[[chains]]\nname = \"c\"\ntargets = [\"openai\"]\nhedge = ^\"25h\"\n", "chains.hedge", "24h"),
    ("[[chains]]\nname = \"c\"\ntargets = [\"openai\"]\nhedge = ^\"p100\"\n", "chains.hedge", "1 to 99.9"),
    // Pools.
    ("[[pools]]\nname = ^\"anthropic\"\nmembers = [\"openai\"]\n", "pools.name", "also a provider's name"),
    ("[[pools]]\nname = ^\"a b\"\nmembers = [\"openai\"]\n", "pools.name", "not a valid name"),
    ("[[pools]]\nname = \"p\"\nmembers = [\"openai\"]\n\n[[pools]]\nname = ^\"p\"\nmembers = [\"anthropic\"]\n", "pools.name", "declared twice"),
    ("[[pools]]\nname = \"p\"\nmembers = ^[]\n", "pools.members", "has none"),
    ("^[[pools]]\nname = \"p\"\n", "pools", "missing field `members`"),
    ("[[pools]]\nname = \"p\"\nstrategy = ^\"random\"\nmembers = [\"openai\"]\n", "pools.strategy", "unknown variant"),
    ("[[pools]]\nname = \"p\"\nmembers = [^\"nobody\"]\n", "pools.members", "no provider is named `nobody`"),
    ("[[pools]]\nname = \"p\"\nmembers = [^{ provider = \"openai\", weight = 0 }]\n", "pools.members", "from 1 to 1000000"),
    ("[[pools]]\nname = \"p\"\nmembers = [^{ provider = \"openai\", weight = -3 }]\n", "pools.members", "from 1 to 1000000"),
    ("[[pools]]\nname = \"p\"\nmembers = [^{ provider = \"openai\", wieght = 2 }]\n", "pools.members", "unknown field `wieght`"),
    ("[[pools]]\nname = \"p\"\nmembers = [^{ weight = 2 }]\n", "pools.members", "missing field `provider`"),
    ("[[pools]]\nname = \"p\"\nmembers = [\"openai\", ^\"openai\"]\n", "pools.members", "listed twice in pool `p`"),
    ("[[pools]]\nname = \"p\"\nmembers = [\"openai\"]\n\n[[pools]]\nname = \"q\"\nmembers = [^\"openai\"]\n", "pools.members", "already a member of pool `p`"),
    ("[[pools]]\nname = \"p\"\nmembers = [\"openai\"]\n\n[[pools]]\nname = \"q\"\nmembers = [^\"p\"]\n", "pools.members", "pools do not nest"),
    ("[[pools]]\nname = \"p\"\nmembers = [\"anthropic\", ^\"openai\"]\n", "pools.members", "`openai` speaks openai and `anthropic` anthropic"),
    ("[[pools]]\nname = \"p\"\nmembers = [\"openai\"]\n\n[[chains]]\nname = \"c\"\ntargets = [^{ provider = \"p\", model = \"m\" }]\n", "chains.targets", "`p` is a pool: name it alone"),
    ("[[pools]]\nname = \"p\"\nmembers = [\"openai\"]\n\n[[chains]]\nname = \"c\"\ntargets = [^\"q\"]\n", "chains.targets", "no provider is named `q` (declared: anthropic, openai; pools: p)"),
    ("[[routes]]\nmodel = ^\"\"\n", "routes.model", "is empty"),
    ("[[routes]]\nmodel = \"x\"\nchain = ^\"nope\"\n", "routes.chain", "no chain is named `nope`"),
    // Prices.
    ("[pricing.\"m\"]\ninput = ^-1\noutput = 1\n", "pricing.m.input", "from 0 to 1000000"),
    ("[pricing.\"gpt-4.1\"]\ninput = 1\noutput = ^nan\n", "pricing.\"gpt-4.1\".output", "from 0 to 1000000"),
    ("[pricing.\"m\"]\ninput = 1\noutput = 1\ncache_read = ^inf\n", "pricing.m.cache_read", "from 0 to 1000000"),
    ("[pricing.\"m\"]\ninput = 1\noutput = 1\n[pricing.\"m\".long_context]\nabove_input_tokens = 1\ninput = ^-2\noutput = 1\n", "pricing.m.long_context.input", "from 0 to 1000000"),
    ("^[pricing.\"\"]\ninput = 1\noutput = 1\n", "pricing", "a model name is empty"),
    // The simulated providers.
    ("[sim]\nproviders = ^[]\n", "sim.providers", "the list is empty"),
    ("[[sim.providers]]\nname = ^\"_sim\"\nprotocol = \"openai\"\n", "sim.providers.name", "not `_sim`"),
    ("[[sim.providers]]\nname = \"a\"\nprotocol = \"openai\"\n\n[[sim.providers]]\nname = ^\"a\"\nprotocol = \"openai\"\n", "sim.providers.name", "declared twice"),
    ("[[sim.providers]]\nname = \"a\"\nprotocol = \"openai\"\njitter = ^2\n", "sim.providers.jitter", "a fraction from 0 to 1"),
    ("[[sim.providers]]\nname = \"a\"\nprotocol = \"openai\"\nmodel = ^\"\"\n", "sim.providers.model", "is empty"),
    ("[[sim.providers]]\nname = \"a\"\nprotocol = \"openai\"\nfirst_event_latency = ^\"25h\"\n", "sim.providers.first_event_latency", "24h"),
    ("[[sim.providers]]\nname = \"a\"\nprotocol = \"openai\"\nfault = ^\"rate_limit:retry_after=25h\"\n", "sim.providers.fault", "up to 24h"),
    ("[[sim.providers]]\nname = \"a\"\nprotocol = \"openai\"\nfault = ^\"reset:p=nan\"\n", "sim.providers.fault", "a probability from 0 to 1"),
    // The gateway, the engine, the policy.
    ("[gateway]\nheader_timeout = ^\"0s\"\n", "gateway.header_timeout", "from 1ms to 1h"),
    ("[gateway]\nmax_connections = ^0\n", "gateway.max_connections", "from 1 to 1000000"),
    ("[engine]\nwhen_all_open = ^\"wait\"\n", "engine.when_all_open", "unknown variant"),
];

#[test]
fn invalid_configs_name_their_line_column_and_field() {
    for (marked, field, says) in CASES {
        let at = marked.find('^').expect("a case marks its place");
        let text = marked.replacen('^', "", 1);
        let line = marked[..at].matches('\n').count() + 1;
        let column = marked[..at].rsplit('\n').next().unwrap().chars().count() + 1;
        let err = Config::parse(&text, "t.toml")
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{text}"))
            .to_string();
        let prefix = format!("t.toml:{line}:{column}: {field}");
        assert!(
            err.starts_with(&prefix),
            "expected `{prefix}…` for\n{text}\ngot: {err}"
        );
        assert!(err.contains(says), "expected `{says}` in: {err}");
    }
}

#[test]
fn every_bound_is_allowed() {
    let text = format!(
        "{PROVIDER}\n[timeouts]\nconnect = \"1ms\"\ntotal = \"24h\"\n\n[breaker]\nfailure_rate = 0\n\
         half_open_probes = 1000\nrecovery_growth = 100\nwindow = \"24h\"\nrecovery = \"0s\"\n\n\
         [retry]\nmax_retries = 100\nmax_attempts = 1\nmin_delay = \"0s\"\nmax_delay = \"1h\"\n\
         factor = 1\nretry_after_cap = \"60m\"\nbudget_capacity = 1000000\nbudget_refill_per_sec = 0\n\n\
         [pricing.m]\ninput = 0\noutput = 1000000\n"
    );
    let config = Config::parse(&text, "t.toml").unwrap();
    assert_eq!(config.timeouts().total, Duration::from_secs(24 * 60 * 60));
    assert_eq!(config.retry.max_delay.0, Duration::from_secs(60 * 60));
    assert_eq!(config.breaker.half_open_probes, 1000);
}

/// `breakerbox ask --demo` with no simulated provider fails at load, naming the line.
#[test]
fn demo_without_simulated_providers_fails_at_load() {
    let path =
        std::env::temp_dir().join(format!("breakerbox-empty-sim-{}.toml", std::process::id()));
    std::fs::write(&path, "[sim]\nproviders = []\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_breakerbox"))
        .args(["ask", "--demo", "--config"])
        .arg(&path)
        .arg("hello")
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let expected = format!("{}:2:13: sim.providers: the list is empty", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Generated configs.

/// How a field is written and what it accepts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Milliseconds from, to; `off` is accepted too when the flag is set.
    Duration(u64, u64, bool),
    Count(i64, i64),
    Number(f64, f64),
}

const HOUR: u64 = 60 * 60 * 1000;
const DAY: u64 = 24 * HOUR;

/// Every numeric and duration field: (table header, key, what it accepts).
const FIELDS: &[(&str, &str, Kind)] = &[
    ("[timeouts]", "connect", Kind::Duration(1, DAY, false)),
    ("[timeouts]", "headers", Kind::Duration(1, DAY, false)),
    ("[timeouts]", "first_event", Kind::Duration(1, DAY, false)),
    ("[timeouts]", "idle", Kind::Duration(1, DAY, false)),
    ("[timeouts]", "total", Kind::Duration(1, DAY, false)),
    (
        "[breaker]",
        "consecutive_failures",
        Kind::Count(0, 1_000_000),
    ),
    ("[breaker]", "failure_rate", Kind::Number(0.0, 1.0)),
    ("[breaker]", "window", Kind::Duration(1, DAY, false)),
    ("[breaker]", "min_calls", Kind::Count(0, 1_000_000)),
    ("[breaker]", "recovery", Kind::Duration(0, DAY, false)),
    ("[breaker]", "recovery_growth", Kind::Number(1.0, 100.0)),
    ("[breaker]", "recovery_max", Kind::Duration(0, DAY, false)),
    ("[breaker]", "half_open_probes", Kind::Count(1, 1000)),
    (
        "[breaker]",
        "open_on_retry_after",
        Kind::Duration(0, DAY, true),
    ),
    ("[retry]", "max_retries", Kind::Count(0, 100)),
    ("[retry]", "max_attempts", Kind::Count(1, 10_000)),
    ("[retry]", "min_delay", Kind::Duration(0, HOUR, false)),
    ("[retry]", "max_delay", Kind::Duration(0, HOUR, false)),
    ("[retry]", "factor", Kind::Number(1.0, 100.0)),
    ("[retry]", "retry_after_cap", Kind::Duration(0, HOUR, false)),
    ("[retry]", "budget_capacity", Kind::Number(0.0, 1e6)),
    ("[retry]", "budget_refill_per_sec", Kind::Number(0.0, 1e6)),
    (
        "[gateway]",
        "header_timeout",
        Kind::Duration(1, HOUR, false),
    ),
    ("[gateway]", "body_timeout", Kind::Duration(1, HOUR, false)),
    ("[gateway]", "idle_timeout", Kind::Duration(1, HOUR, false)),
    ("[gateway]", "max_connections", Kind::Count(1, 1_000_000)),
    ("[[providers]]", "context_window", Kind::Count(1, i64::MAX)),
    ("[pricing.m]", "input", Kind::Number(0.0, 1e6)),
    ("[pricing.m]", "output", Kind::Number(0.0, 1e6)),
    (
        "[[sim.providers]]",
        "first_event_latency",
        Kind::Duration(0, DAY, false),
    ),
    (
        "[[sim.providers]]",
        "token_delay",
        Kind::Duration(0, DAY, false),
    ),
    ("[[sim.providers]]", "jitter", Kind::Number(0.0, 1.0)),
];

/// A value as written in the file.
#[derive(Debug, Clone)]
enum Written {
    /// A string: a number of milliseconds, seconds or hours.
    Ms(u64),
    Secs(u64),
    Hours(u64),
    /// A string that is not a duration, or `off`.
    Text(&'static str),
    Int(i64),
    Float(f64),
}

impl Written {
    fn toml(&self) -> String {
        match self {
            Written::Ms(n) => format!("\"{n}ms\""),
            Written::Secs(n) => format!("\"{n}s\""),
            Written::Hours(n) => format!("\"{n}h\""),
            Written::Text(t) => format!("{t:?}"),
            Written::Int(n) => n.to_string(),
            Written::Float(x) if x.is_nan() => "nan".to_string(),
            Written::Float(x) if x.is_infinite() => {
                if *x > 0.0 { "inf" } else { "-inf" }.to_string()
            }
            Written::Float(x) => format!("{x:?}"),
        }
    }

    /// Whether a field of this kind accepts it: the documented ranges, as a reference.
    fn accepted_as(&self, kind: Kind) -> bool {
        let ms = |n: u64, unit: u128| u128::from(n) * unit;
        match (kind, self) {
            (Kind::Duration(min, max, _), Written::Ms(n)) => (min..=max).contains(n),
            (Kind::Duration(min, max, _), Written::Secs(n)) => {
                (u128::from(min)..=u128::from(max)).contains(&ms(*n, 1000))
            }
            (Kind::Duration(min, max, _), Written::Hours(n)) => {
                (u128::from(min)..=u128::from(max)).contains(&ms(*n, u128::from(HOUR)))
            }
            (Kind::Duration(_, _, off), Written::Text("off")) => off,
            (Kind::Count(min, max), Written::Int(n)) => (min..=max).contains(n),
            (Kind::Number(min, max), Written::Int(n)) => (min..=max).contains(&(*n as f64)),
            (Kind::Number(min, max), Written::Float(x)) => (min..=max).contains(x),
            _ => false,
        }
    }
}

fn written() -> impl Strategy<Value = Written> {
    prop_oneof![
        (0..=2 * DAY).prop_map(Written::Ms),
        any::<u64>().prop_map(Written::Ms),
        (0..=100_000u64).prop_map(Written::Secs),
        prop::sample::select(vec![
            0,
            1,
            86_400,
            86_401,
            9_300_000_000_000_000_000,
            u64::MAX
        ])
        .prop_map(Written::Secs),
        (0..=48u64).prop_map(Written::Hours),
        prop::sample::select(vec![
            "off", "", "5", "-1s", "1e3s", "fast", "nan s", "1.5.5s"
        ])
        .prop_map(Written::Text),
        (-5..=1_001i64).prop_map(Written::Int),
        prop::sample::select(vec![
            0,
            1,
            100,
            1_000_000,
            1_000_001,
            1 << 32,
            i64::MIN,
            i64::MAX
        ])
        .prop_map(Written::Int),
        any::<i64>().prop_map(Written::Int),
        (-1.0..2.0f64).prop_map(Written::Float),
        (0.0..200.0f64).prop_map(Written::Float),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e300,
            1e6
        ])
        .prop_map(Written::Float),
        any::<f64>().prop_map(Written::Float),
    ]
}

/// The values at and just past the bounds of a field of `kind`, and the wrong types.
fn edges(kind: Kind) -> Vec<Written> {
    let mut edges = match kind {
        Kind::Duration(min, max, _) => {
            let mut e = [min.saturating_sub(1), min, max, max + 1]
                .map(Written::Ms)
                .to_vec();
            e.extend([
                Written::Secs(max / 1000 + 1),
                Written::Hours(25),
                Written::Text("off"),
            ]);
            e
        }
        Kind::Count(min, max) => [min - 1, min, max, max.saturating_add(1)]
            .map(Written::Int)
            .to_vec(),
        Kind::Number(min, max) => [min - 1e-6, min, max, max + 1e-6, f64::NAN, f64::INFINITY]
            .map(Written::Float)
            .to_vec(),
    };
    edges.extend([Written::Float(2.5), Written::Int(5), Written::Text("5")]);
    edges
}

/// A value for a field of `kind`: often in its range, often at or just past one of its bounds,
/// else anything.
fn value_for(kind: Kind) -> impl Strategy<Value = Written> {
    let in_range = match kind {
        Kind::Duration(min, max, _) => (min..=max).prop_map(Written::Ms).boxed(),
        Kind::Count(min, max) => (min..=max).prop_map(Written::Int).boxed(),
        Kind::Number(min, max) => (min..=max).prop_map(Written::Float).boxed(),
    };
    prop_oneof![3 => in_range, 2 => prop::sample::select(edges(kind)), 2 => written()]
}

/// A field and a value for it.
fn setting() -> impl Strategy<Value = (usize, Written)> {
    (0..FIELDS.len()).prop_flat_map(|i| (Just(i), value_for(FIELDS[i].2)))
}

/// The config text for some fields set to some values, each table written once.
fn config_text(set: &[(usize, Written)]) -> String {
    let mut tables: Vec<(&str, String)> = Vec::new();
    for (i, value) in set {
        let (table, key, _) = FIELDS[*i];
        let line = format!("{key} = {}\n", value.toml());
        match tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, body)) if !body.contains(&format!("\n{key} =")) => body.push_str(&line),
            Some(_) => {}
            None => tables.push((table, format!("\n{line}"))),
        }
    }
    let mut text = String::new();
    for (table, body) in tables {
        text.push_str(table);
        text.push_str(match table {
            "[[providers]]" => "\nname = \"p\"\nprotocol = \"openai\"\nmodel = \"m\"",
            "[[sim.providers]]" => "\nname = \"s\"\nprotocol = \"anthropic\"",
            "[pricing.m]" if !body.contains("\ninput =") => "\ninput = 1.0",
            _ => "",
        });
        text.push_str(&body);
        if table == "[pricing.m]" && !body.contains("\noutput =") {
            text.push_str("output = 1.0\n");
        }
        text.push('\n');
    }
    text
}

/// Each field alone, at and just past each of its bounds and with values of the wrong type:
/// accepted exactly as the reference says, refused naming the field.
#[test]
fn each_field_accepts_exactly_its_range() {
    for &(table, key, kind) in FIELDS {
        let i = FIELDS
            .iter()
            .position(|f| f.1 == key && f.0 == table)
            .unwrap();
        for value in edges(kind) {
            let text = config_text(&[(i, value.clone())]);
            let result = Config::parse(&text, "t.toml");
            assert_eq!(
                result.is_ok(),
                value.accepted_as(kind),
                "{table} {key} = {}: {:?}",
                value.toml(),
                result.err().map(|e| e.to_string())
            );
            if let Err(e) = result {
                assert!(e.to_string().contains(&format!(".{key}: ")), "{e}");
            }
        }
    }
}

/// What every valid config must survive: building the engine, and the deadlines, backoffs,
/// retry decisions and breaker periods computed from its values, at their extremes.
fn exercise(config: &Config) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let common = CommonArgs::default();
        let keys = |_: &str| Some("test-key".to_string());
        let built = setup::build(&common, config, Bus::new(64), &keys)
            .await
            .expect("a valid config builds");
        built.engine(None).expect("and its engine");

        let now = Instant::now();
        let t = config.timeouts();
        for limit in [t.connect, t.headers, t.first_event, t.idle, t.total] {
            assert!(now.checked_add(limit).is_some(), "{limit:?}");
        }

        let retry = config.retry.to_config();
        let budget = RetryBudget::new(&retry.budget);
        let mut backoff = Backoff::new(&retry);
        for so_far in 0..retry.max_retries {
            let after =
                [None, Some(MAX_RETRY_AFTER), Some(retry.retry_after_cap)][so_far as usize % 3];
            if let RetryDecision::RetryAfter(wait) =
                decide(&retry, &mut backoff, after, so_far, &budget)
            {
                assert!(
                    wait <= retry.max_delay.max(retry.retry_after_cap),
                    "{wait:?}"
                );
                assert!(now.checked_add(wait).is_some());
            }
        }

        let breaker = config.breaker.to_config();
        let mut b = Breaker::new(breaker.clone());
        let mut at = now;
        for _ in 0..20 {
            let (admitted, _) = b.admit(at);
            if let Ok(probe) = admitted {
                let failure = CallOutcome::Failure {
                    retry_after: Some(MAX_RETRY_AFTER),
                };
                b.record(at, probe, failure);
            }
            at += breaker
                .recovery_max
                .max(breaker.recovery)
                .min(MAX_RETRY_AFTER);
        }
    });
}

/// The error's place, when parsing fails: every error names a line and a column.
fn check_parse(text: &str) -> Option<Config> {
    match Config::parse(text, "gen.toml") {
        Ok(config) => Some(config),
        Err(e) => {
            let e = e.to_string();
            assert!(
                location(&e, "gen.toml").is_some(),
                "no line and column in: {e}\n{text}"
            );
            None
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Each field set to a value from its range or out of it: the config loads exactly when every
    /// value is in its documented range, an error names an offending field at its line, and a
    /// config that loads builds an engine whose arithmetic holds.
    #[test]
    fn generated_configs_load_exactly_when_every_value_is_in_range(
        set in prop::collection::vec(setting(), 1..8)
    ) {
        // A key written twice is skipped, so only the first value of each field counts.
        let mut firsts: Vec<(usize, Written)> = Vec::new();
        for (i, v) in &set {
            if !firsts.iter().any(|(j, _)| j == i) {
                firsts.push((*i, v.clone()));
            }
        }
        let text = config_text(&firsts);
        let bad: Vec<&str> = firsts
            .iter()
            .filter(|(i, v)| !v.accepted_as(FIELDS[*i].2))
            .map(|(i, _)| FIELDS[*i].1)
            .collect();
        match Config::parse(&text, "gen.toml") {
            Ok(config) => {
                prop_assert!(bad.is_empty(), "accepted {bad:?}:\n{text}");
                exercise(&config);
            }
            Err(e) => {
                let e = e.to_string();
                prop_assert!(location(&e, "gen.toml").is_some(), "no line and column: {e}");
                prop_assert!(
                    bad.iter().any(|key| e.contains(&format!(".{key}: "))),
                    "refused, but not for one of {bad:?}: {e}\n{text}"
                );
            }
        }
    }

    /// The shipped sample, mutated: a value replaced, a line dropped or doubled, a character
    /// inserted, the file cut short. Loading never panics, every error has a line and a column,
    /// and whatever loads builds an engine.
    #[test]
    fn mutations_of_the_sample_never_panic(
        line in any::<prop::sample::Index>(),
        offset in any::<prop::sample::Index>(),
        value in written(),
        c in any::<char>(),
        how in 0..5u8,
    ) {
        let lines: Vec<&str> = SAMPLE.lines().collect();
        let at = line.index(lines.len());
        let text = match how {
            0 => {
                let mut out = lines.clone();
                let replaced;
                if let Some((key, _)) = lines[at].split_once(" = ") {
                    replaced = format!("{key} = {}", value.toml());
                    out[at] = &replaced;
                }
                out.join("\n")
            }
            1 => {
                let mut out = lines.clone();
                out.remove(at);
                out.join("\n")
            }
            2 => {
                let mut out = lines.clone();
                out.insert(at, lines[at]);
                out.join("\n")
            }
            3 => {
                let mut cut = offset.index(SAMPLE.len() + 1);
                while !SAMPLE.is_char_boundary(cut) {
                    cut -= 1;
                }
                let mut text = SAMPLE.to_string();
                text.insert(cut, c);
                text
            }
            _ => {
                let mut cut = offset.index(SAMPLE.len() + 1);
                while !SAMPLE.is_char_boundary(cut) {
                    cut -= 1;
                }
                SAMPLE[..cut].to_string()
            }
        };
        if let Some(config) = check_parse(&text) {
            exercise(&config);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The largest values allowed, through the simulator.

const LARGEST: &str = r#"
[timeouts]
connect = "24h"
headers = "24h"
first_event = "24h"
idle = "24h"
total = "24h"

[breaker]
consecutive_failures = 1000000
failure_rate = 1.0
window = "24h"
min_calls = 1000000
recovery = "24h"
recovery_growth = 100.0
recovery_max = "24h"
half_open_probes = 1000
open_on_retry_after = "24h"

[retry]
max_retries = 1
max_attempts = 10000
min_delay = "1h"
max_delay = "1h"
factor = 100.0
jitter = false
retry_after_cap = "1h"
budget_capacity = 1000000
budget_refill_per_sec = 1000000

[gateway]
header_timeout = "1h"
body_timeout = "1h"
idle_timeout = "1h"
max_connections = 1000000

[[chains]]
name = "default"
targets = ["anthropic", "openai"]
hedge = "24h"
"#;

/// Ask once; the reply's text, who answered, and how long it took on tokio's clock.
async fn ask(engine: &breakerbox::engine::failover::FailoverEngine) -> (String, bool, Duration) {
    let started = Instant::now();
    let meta = breakerbox::engine::failover::RequestMeta::new(Source::Ask);
    let (_, mut stream) = engine.send(Request::prompt("hello"), meta);
    let mut text = String::new();
    let mut complete = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(StreamEvent::Rewind { .. }) => text.clear(),
            Ok(StreamEvent::Done { .. }) => complete = true,
            _ => {}
        }
    }
    (text, complete, started.elapsed())
}

/// Under a paused clock, tokio jumps to the next timer whenever it is idle, also while it waits
/// for a socket; a one-second tick keeps those jumps short, so that the day-long limits are only
/// reached when something really waits that long.
fn tick() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_largest_values_allowed_run_requests_without_panic_or_hang() {
    let config = Config::parse(&format!("{LARGEST}{}", paced_sim()), "largest.toml").unwrap();
    let common = CommonArgs {
        demo: true,
        ..CommonArgs::default()
    };
    let setup = setup::build(&common, &config, Bus::new(1 << 16), &|_| None)
        .await
        .unwrap();
    let engine = setup.engine(None).unwrap();
    let sim = setup.sim.as_ref().unwrap();
    let ticker = tick();

    // A healthy request: deadlines a day away are computed, none is reached.
    let (text, complete, took) = ask(&engine).await;
    assert!(complete && !text.is_empty(), "{text:?}");
    assert!(took < Duration::from_secs(60), "{took:?}");

    // A failing primary is retried after the longest backoff (an hour), then the next target answers.
    sim.set_fault("anthropic", "server_error".parse().unwrap())
        .unwrap();
    let (text, complete, took) = ask(&engine).await;
    assert!(complete && !text.is_empty());
    let hour = Duration::from_secs(60 * 60);
    assert!(
        took >= hour && took < hour + Duration::from_secs(60),
        "{took:?}"
    );

    // A provider asking for the longest wait there is: more than the cap, so no wait; its breaker
    // opens for a day, and the next request skips it.
    sim.set_fault("anthropic", "rate_limit:retry_after=24h".parse().unwrap())
        .unwrap();
    for _ in 0..2 {
        let (text, complete, took) = ask(&engine).await;
        assert!(complete && !text.is_empty());
        assert!(took < Duration::from_secs(60), "{took:?}");
    }
    let snapshot = engine.shared().breakers.snapshot(&"anthropic".into());
    assert!(
        snapshot
            .open_remaining
            .is_some_and(|d| d <= Duration::from_secs(24 * 60 * 60))
    );
    ticker.abort();
}
