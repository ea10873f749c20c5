//! The checks that run after deserialization: names, URLs and prices, and values together (a name
//! declared twice, a pool's members, a chain naming a provider or a pool, a route naming a chain,
//! a key bound twice). Each
//! failure names its field, by its [`Spanned`] span or by its path in the text ([`locate`]), and
//! says what to do.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use toml::Spanned;

use super::{ChainEntry, Config, PoolEntry, ProviderEntry, RouteEntry, SimEntry, TargetEntry};
use crate::engine::cost::ModelPrice;
use crate::keys::{Bindings, KeyList};
use crate::parse::locate::{self, Step, span_of};

/// A check that failed after deserialization: where, and what to say (naming the field).
pub(super) struct Invalid {
    pub(super) span: Range<usize>,
    pub(super) message: String,
}

fn invalid<T>(span: Range<usize>, message: String) -> Result<T, Invalid> {
    Err(Invalid { span, message })
}

impl Config {
    /// The checks of values that deserialized, alone or together, section by section; the first
    /// that fails is the one reported.
    pub(super) fn validate(&self, text: &str) -> Result<(), Invalid> {
        check_providers(&self.providers, text)?;
        // The real providers and the simulated ones, each name once.
        let mut known: Vec<&str> = Vec::new();
        for name in self
            .providers
            .iter()
            .map(ProviderEntry::name)
            .chain(self.sim.providers.iter().map(|p| p.name.as_str()))
        {
            if !known.contains(&name) {
                known.push(name);
            }
        }
        let pools = check_pools(self, &known, text)?;
        let chains = check_chains(&self.chains, &known, &pools, text)?;
        check_routes(&self.routes, &chains)?;
        check_keys(&self.keys, text)?;
        check_pricing(&self.pricing, text)?;
        check_cluster(&self.cluster, text)?;
        check_sim_providers(&self.sim.providers, text)
    }
}

/// `[cluster]`: a Redis URL breakerbox can use, names that fit in a Redis key and a log line.
fn check_cluster(cluster: &super::ClusterSection, text: &str) -> Result<(), Invalid> {
    if let Some(redis) = &cluster.redis
        && let Err(e) = crate::cluster::address(redis.get_ref())
    {
        return invalid(redis.span(), format!("cluster.redis: {e}"));
    }
    for (field, value) in [("name", &cluster.name), ("instance", &cluster.instance)] {
        if let Some(value) = value
            && (value.is_empty()
                || value.len() > 64
                || value.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return invalid(
                span_of(text, &["cluster".into(), field.into()]),
                format!(
                    "cluster.{field} `{}` is not a usable name: 1 to 64 characters, no spaces",
                    value.escape_debug()
                ),
            );
        }
    }
    Ok(())
}

/// Each provider has a valid name of its own, and fields that make sense.
fn check_providers(providers: &[ProviderEntry], text: &str) -> Result<(), Invalid> {
    let mut seen = HashSet::new();
    for (i, p) in providers.iter().enumerate() {
        let name = p.name();
        if !valid_name(name) {
            return invalid(
                p.name.span(),
                format!(
                    "providers.name `{name}` is not a valid name: use letters, digits, `-` and `_`"
                ),
            );
        }
        if !seen.insert(name) {
            return invalid(
                p.name.span(),
                format!(
                    "providers.name `{name}` is declared twice: give each provider its own name"
                ),
            );
        }
        check_provider(p, |key| {
            span_of(text, &["providers".into(), i.into(), key.into()])
        })?;
    }
    Ok(())
}

/// A provider's model, base URL and variable names; `field` finds where one of its keys is written.
fn check_provider(
    p: &ProviderEntry,
    field: impl Fn(&'static str) -> Range<usize>,
) -> Result<(), Invalid> {
    let name = p.name();
    if p.model.trim().is_empty() {
        return invalid(
            field("model"),
            format!("providers.model of `{name}` is empty: name the model to ask for"),
        );
    }
    if let Some(url) = &p.base_url {
        check_base_url(url).or_else(|why| {
            invalid(
                field("base_url"),
                format!("providers.base_url of `{name}`: {why}"),
            )
        })?;
    }
    for (key, var) in [
        ("base_url_env", &p.base_url_env),
        ("api_key_env", &p.api_key_env),
    ] {
        if let Some(var) = var
            && !valid_env_name(var)
        {
            return invalid(
                field(key),
                format!(
                    "providers.{key} of `{name}`: `{var}` is not an environment variable \
                     name: use letters, digits and `_`"
                ),
            );
        }
    }
    Ok(())
}

/// Each chain has a valid name of its own and targets among the `known` providers and the
/// `pools`; the names.
fn check_chains<'a>(
    chains: &'a [ChainEntry],
    known: &[&str],
    pools: &[&str],
    text: &str,
) -> Result<HashSet<&'a String>, Invalid> {
    let mut names = HashSet::new();
    for (i, chain) in chains.iter().enumerate() {
        let name = chain.name.get_ref();
        if !valid_name(name) {
            return invalid(
                chain.name.span(),
                format!(
                    "chains.name `{name}` is not a valid name: use letters, digits, `-` and `_`"
                ),
            );
        }
        if !names.insert(name) {
            return invalid(
                chain.name.span(),
                format!("chains.name `{name}` is declared twice"),
            );
        }
        if chain.targets.is_empty() {
            return invalid(
                span_of(text, &["chains".into(), i.into(), "targets".into()]),
                format!("chains.targets: chain `{name}` has none: list provider names"),
            );
        }
        check_targets(&chain.targets, known, pools)?;
    }
    Ok(names)
}

/// Each target names a `known` provider or one of the `pools` (a pool by its name alone), and a
/// model only if it is not empty.
fn check_targets(
    targets: &[Spanned<TargetEntry>],
    known: &[&str],
    pools: &[&str],
) -> Result<(), Invalid> {
    for target in targets {
        let provider = target.get_ref().provider();
        if pools.contains(&provider) {
            if let TargetEntry::Table { .. } = target.get_ref() {
                return invalid(
                    target.span(),
                    format!(
                        "chains.targets: `{provider}` is a pool: name it alone (\"{provider}\"); \
                         its members ask for their own models"
                    ),
                );
            }
            continue;
        }
        if !known.contains(&provider) {
            let pools = if pools.is_empty() {
                String::new()
            } else {
                format!("; pools: {}", pools.join(", "))
            };
            return invalid(
                target.span(),
                format!(
                    "chains.targets: no provider is named `{provider}` (declared: {}{pools})",
                    known.join(", ")
                ),
            );
        }
        if target
            .get_ref()
            .model()
            .is_some_and(|m| m.trim().is_empty())
        {
            return invalid(
                target.span(),
                format!(
                    "chains.targets: the model for `{provider}` is empty: name a model, \
                     or leave `model` out for the provider's own"
                ),
            );
        }
    }
    Ok(())
}

/// Each pool has a valid name of its own, shared with no provider, and members: `known`
/// providers, each listed once, in no other pool, speaking protocols of the same models. The
/// pools' names.
fn check_pools<'a>(
    config: &'a Config,
    known: &[&str],
    text: &str,
) -> Result<Vec<&'a str>, Invalid> {
    let mut names: Vec<&str> = Vec::new();
    // Each provider already in a pool, and which.
    let mut member_of: Vec<(&str, &str)> = Vec::new();
    for (i, pool) in config.pools.iter().enumerate() {
        let name = pool.name();
        if !valid_name(name) {
            return invalid(
                pool.name.span(),
                format!(
                    "pools.name `{name}` is not a valid name: use letters, digits, `-` and `_`"
                ),
            );
        }
        if names.contains(&name) {
            return invalid(
                pool.name.span(),
                format!("pools.name `{name}` is declared twice: give each pool its own name"),
            );
        }
        if known.contains(&name) {
            return invalid(
                pool.name.span(),
                format!(
                    "pools.name `{name}` is also a provider's name: a chain target names one or \
                     the other, so give the pool a name of its own"
                ),
            );
        }
        if pool.members.is_empty() {
            return invalid(
                span_of(text, &["pools".into(), i.into(), "members".into()]),
                format!(
                    "pools.members: pool `{name}` has none: list the providers it spreads over"
                ),
            );
        }
        for member in &pool.members {
            let provider = member.get_ref().provider.as_str();
            check_member(config, pool, member.span(), provider, known)?;
            if let Some((_, other)) = member_of.iter().find(|(p, _)| *p == provider) {
                let again = if *other == name {
                    format!("pools.members: `{provider}` is listed twice in pool `{name}`")
                } else {
                    format!(
                        "pools.members: `{provider}` is already a member of pool `{other}`: a \
                         provider belongs to one pool"
                    )
                };
                return invalid(member.span(), again);
            }
            member_of.push((provider, name));
        }
        check_pool_protocols(config, pool)?;
        names.push(name);
    }
    Ok(names)
}

/// A member names a `known` provider (not a pool: pools do not nest).
fn check_member(
    config: &Config,
    pool: &PoolEntry,
    span: Range<usize>,
    provider: &str,
    known: &[&str],
) -> Result<(), Invalid> {
    if known.contains(&provider) {
        return Ok(());
    }
    let why = if config.pool(provider).is_some() {
        format!("`{provider}` is a pool, and pools do not nest: list its providers instead")
    } else {
        format!(
            "no provider is named `{provider}` (declared: {})",
            known.join(", ")
        )
    };
    invalid(span, format!("pools.members of `{}`: {why}", pool.name()))
}

/// A pool's members are deployments of one model: among the real providers, and among the
/// simulated ones, they speak protocols of the same models (`openai` and `openai_responses` go
/// together).
fn check_pool_protocols(config: &Config, pool: &PoolEntry) -> Result<(), Invalid> {
    let real = |name: &str| {
        config
            .providers
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.protocol)
    };
    let simulated = |name: &str| {
        config
            .sim
            .providers
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.protocol)
    };
    for protocol_of in [
        &real as &dyn Fn(&str) -> Option<crate::provider::Protocol>,
        &simulated,
    ] {
        let mut first: Option<(&str, crate::provider::Protocol)> = None;
        for member in &pool.members {
            let provider = member.get_ref().provider.as_str();
            let Some(protocol) = protocol_of(provider) else {
                continue;
            };
            match first {
                None => first = Some((provider, protocol)),
                Some((one, theirs)) if !theirs.same_models(protocol) => {
                    return invalid(
                        member.span(),
                        format!(
                            "pools.members of `{}`: `{provider}` speaks {protocol} and `{one}` \
                             {theirs}: a pool's members are deployments of one model; put \
                             `{provider}` in the chain after the pool instead",
                            pool.name()
                        ),
                    );
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Each route has a model name of its own and goes down a declared chain (or `default`).
fn check_routes(routes: &[RouteEntry], chains: &HashSet<&String>) -> Result<(), Invalid> {
    let mut seen = HashSet::new();
    for route in routes {
        let model = route.model.get_ref();
        if model.trim().is_empty() {
            return invalid(
                route.model.span(),
                "routes.model is empty: give the model name clients will send".to_string(),
            );
        }
        if !seen.insert(model) {
            return invalid(
                route.model.span(),
                format!(
                    "routes.model `{model}` is declared twice: each model name picks one route"
                ),
            );
        }
        let chain = route.chain.get_ref();
        if chain != "default" && !chains.contains(chain) {
            return invalid(
                route.chain.span(),
                format!(
                    "routes.chain: no chain is named `{chain}`, for route `{model}` (declared: {})",
                    declared(chains)
                ),
            );
        }
    }
    Ok(())
}

/// The declared chains for a message: their names in order, or where to declare one.
fn declared(chains: &HashSet<&String>) -> String {
    if chains.is_empty() {
        return "none; declare it under [[chains]]".to_string();
    }
    let mut names: Vec<&str> = chains.iter().map(|n| n.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

/// The console's key overrides name actions and keys, and bind no key twice.
fn check_keys(keys: &BTreeMap<String, KeyList>, text: &str) -> Result<(), Invalid> {
    // One action at a time, so that an error points at the override that caused it.
    let mut so_far = BTreeMap::new();
    for (action, list) in keys {
        so_far.insert(action.clone(), list.clone());
        if let Err(e) = Bindings::with_overrides(&so_far) {
            return invalid(span_of(text, &["keys".into(), action.as_str().into()]), e);
        }
    }
    Ok(())
}

/// Each priced model is named, and each of its prices is in range.
fn check_pricing(pricing: &BTreeMap<String, ModelPrice>, text: &str) -> Result<(), Invalid> {
    for (model, price) in pricing {
        let here = |fields: &[&str]| {
            let mut path = vec!["pricing".into(), model.as_str().into()];
            path.extend(fields.iter().map(|&f| Step::Key(f)));
            span_of(text, &path)
        };
        if model.trim().is_empty() {
            return invalid(
                here(&[]),
                "pricing: a model name is empty: name the model (or its prefix) the prices are for"
                    .to_string(),
            );
        }
        for (fields, value) in prices(price) {
            if !(0.0..=MAX_PRICE).contains(&value) {
                return invalid(
                    here(&fields),
                    format!(
                        "pricing.{}.{}: {value} is out of range: use USD per million tokens, \
                         from 0 to {MAX_PRICE}",
                        locate::quoted(model),
                        fields.join(".")
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Each simulated provider has a valid name of its own, and a model only if it is not empty.
fn check_sim_providers(providers: &[SimEntry], text: &str) -> Result<(), Invalid> {
    let mut seen = HashSet::new();
    for (i, p) in providers.iter().enumerate() {
        let field = |key: &'static str| {
            span_of(
                text,
                &["sim".into(), "providers".into(), i.into(), key.into()],
            )
        };
        if !valid_name(&p.name) || p.name == "_sim" {
            return invalid(
                field("name"),
                format!(
                    "sim.providers.name `{}` is not a valid name: use letters, digits, `-` and `_` (and not `_sim`)",
                    p.name
                ),
            );
        }
        if !seen.insert(&p.name) {
            return invalid(
                field("name"),
                format!("sim.providers.name `{}` is declared twice", p.name),
            );
        }
        if p.model.as_ref().is_some_and(|m| m.trim().is_empty()) {
            return invalid(
                field("model"),
                format!(
                    "sim.providers.model of `{}` is empty: name a model, or leave it out for the default",
                    p.name
                ),
            );
        }
    }
    Ok(())
}

/// The highest price accepted, USD per million tokens: far above any model's, low enough that a
/// cost cannot overflow.
const MAX_PRICE: f64 = 1_000_000.0;

/// Every price of a model, with the path of its field.
fn prices(price: &ModelPrice) -> Vec<(Vec<&'static str>, f64)> {
    let mut all = vec![(vec!["input"], price.input), (vec!["output"], price.output)];
    all.extend(price.cache_write.map(|v| (vec!["cache_write"], v)));
    all.extend(price.cache_read.map(|v| (vec!["cache_read"], v)));
    if let Some(long) = &price.long_context {
        all.push((vec!["long_context", "input"], long.input));
        all.push((vec!["long_context", "output"], long.output));
        all.extend(
            long.cache_write
                .map(|v| (vec!["long_context", "cache_write"], v)),
        );
        all.extend(
            long.cache_read
                .map(|v| (vec!["long_context", "cache_read"], v)),
        );
    }
    all
}

/// A base URL the HTTP client can use.
fn check_base_url(url: &str) -> Result<(), String> {
    // Shown without the user info and query, where keys hide.
    let shown = crate::secret::url_for_display(url);
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(()),
        Ok(_) => Err(format!("`{shown}` is not an http:// or https:// URL")),
        Err(e) => Err(format!(
            "`{shown}` is not a URL ({e}): write e.g. `https://api.example.com/v1`"
        )),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
