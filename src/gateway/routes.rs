//! The gateway's routes: the model name a client sends picks a chain, and how the reply streams.
//! A request may name another of the configured chains (`x-breakerbox-chain`): every chain has
//! its engines, built once.

use color_eyre::eyre::{Result, WrapErr};

use crate::config::{RouteEntry, RouteMode};
use crate::engine::failover::{FailoverEngine, MidStreamPolicy};
use crate::event::Source;
use crate::provider::Protocol;
use crate::session::Setup;
use crate::session::setup::Chain;

/// A chain's two engines, over the same targets (and the same breakers).
#[derive(Clone)]
pub struct Engines {
    /// For streaming clients of a `live` route: text the client has seen is never withdrawn, so a
    /// mid-stream failure continues on a prefill-capable target or ends in an error.
    live: FailoverEngine,
    /// For everything else (buffered routes, non-streaming clients): the chain's own mid-stream
    /// policy, since the client sees nothing until the reply is complete.
    whole: FailoverEngine,
}

impl Engines {
    fn build(setup: &Setup, chain: &Chain) -> Result<Engines> {
        let live_policy = match chain.mid_stream {
            MidStreamPolicy::Fail => MidStreamPolicy::Fail,
            _ => MidStreamPolicy::ContinueOrFail,
        };
        let live = setup
            .engine_for(&chain.name, &chain.entries, live_policy, chain.hedge)?
            .with_source(Source::Gateway);
        let whole = setup
            .engine_for(&chain.name, &chain.entries, chain.mid_stream, chain.hedge)?
            .with_source(Source::Gateway);
        Ok(Engines { live, whole })
    }

    /// The engine for a client that streams (`stream: true`) or not, on a route of `mode`.
    pub fn engine(&self, streaming: bool, mode: RouteMode) -> &FailoverEngine {
        if streaming && mode == RouteMode::Live {
            &self.live
        } else {
            &self.whole
        }
    }
}

/// One route: the chain it goes down by default, and how its replies stream.
#[derive(Clone)]
pub struct Route {
    /// The model name clients send, or a pattern of them (`claude-*`, `*`: `*` matches any run of
    /// characters).
    pub model: String,
    pub chain: String,
    pub mode: RouteMode,
    pub passthrough: bool,
    engines: Engines,
}

impl Route {
    /// The engine for a client that streams (`stream: true`) or not.
    pub fn engine(&self, streaming: bool) -> &FailoverEngine {
        self.engines.engine(streaming, self.mode)
    }

    /// What a request naming `model` in `protocol` asks of the targets speaking that protocol: the
    /// model as named on a route by pattern (`default` excepted), nothing on a route by name.
    pub fn as_requested(&self, protocol: Protocol, model: &str) -> Option<(Protocol, String)> {
        (is_pattern(&self.model) && model != "default").then(|| (protocol, model.to_string()))
    }

    /// The provider names of the chain, in order.
    pub fn targets(&self) -> Vec<String> {
        self.engines
            .whole
            .targets()
            .iter()
            .map(|t| t.provider.name().to_string())
            .collect()
    }
}

/// Every route, in the config's order, and every chain a request may name.
#[derive(Clone)]
pub struct Routes {
    routes: Vec<Route>,
    /// Each configured chain (and `default`) by name: its engines, or why it cannot be used here
    /// (a chain no route takes may name providers this mode does not have).
    chains: Vec<(String, Result<Engines, String>)>,
}

/// A chain a request named that it cannot go down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainRefused {
    /// No chain of that name: the names there are.
    Unknown(Vec<String>),
    /// Declared, but it cannot be built in this mode: why.
    Unusable(String),
}

/// The route used when the config declares none: any model name.
pub const DEFAULT_ROUTE: &str = "*";

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (none included)
/// and everything else for itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == name;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether a route's model is a pattern rather than one name.
pub fn is_pattern(model: &str) -> bool {
    model.contains('*')
}

impl Routes {
    /// Build the routes of the config (or the one `default` route) over `setup`'s providers, and
    /// the engines of every chain.
    pub fn build(setup: &Setup) -> Result<Routes> {
        let mut names: Vec<String> = setup
            .config()
            .chains
            .iter()
            .map(|c| c.name.get_ref().clone())
            .collect();
        if !names.iter().any(|n| n == "default") {
            names.insert(0, "default".to_string());
        }
        let chains: Vec<(String, Result<Engines, String>)> = names
            .into_iter()
            .map(|name| {
                let built = setup
                    .chain(Some(&name))
                    .and_then(|chain| Engines::build(setup, &chain))
                    .map_err(|e| format!("{e:#}"));
                (name, built)
            })
            .collect();
        let routes = Self::routes(setup, &chains)?;
        Ok(Routes { routes, chains })
    }

    /// The routes of the config, each over its chain's engines.
    fn routes(setup: &Setup, chains: &[(String, Result<Engines, String>)]) -> Result<Vec<Route>> {
        let declared = &setup.config().routes;
        let entries: Vec<(String, String, RouteMode, bool)> = if declared.is_empty() {
            vec![(
                DEFAULT_ROUTE.to_string(),
                "default".to_string(),
                RouteMode::Live,
                false,
            )]
        } else {
            declared
                .iter()
                .map(|r: &RouteEntry| {
                    (
                        r.model.get_ref().clone(),
                        r.chain.get_ref().clone(),
                        r.mode,
                        r.passthrough,
                    )
                })
                .collect()
        };
        let mut routes = Vec::new();
        for (model, chain, mode, passthrough) in entries {
            let engines = match chains.iter().find(|(name, _)| *name == chain) {
                Some((_, Ok(engines))) => engines.clone(),
                // Said again, with the config's context.
                _ => setup
                    .chain(Some(&chain))
                    .and_then(|c| Engines::build(setup, &c))
                    .wrap_err_with(|| format!("route `{model}`"))?,
            };
            routes.push(Route {
                model,
                chain,
                mode,
                passthrough,
                engines,
            });
        }
        Ok(routes)
    }

    /// The engines of the chain named `name`, for a request that asks for it.
    pub fn chain(&self, name: &str) -> Result<&Engines, ChainRefused> {
        match self.chains.iter().find(|(n, _)| n == name) {
            Some((_, Ok(engines))) => Ok(engines),
            Some((_, Err(why))) => Err(ChainRefused::Unusable(why.clone())),
            None => Err(ChainRefused::Unknown(
                self.chains.iter().map(|(n, _)| n.clone()).collect(),
            )),
        }
    }

    /// The route for a model name as the client sent it: the route of that exact name, else the
    /// first (in the config's order) whose pattern matches it.
    pub fn get(&self, model: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| !is_pattern(&r.model) && r.model == model)
            .or_else(|| {
                self.routes
                    .iter()
                    .find(|r| is_pattern(&r.model) && matches(&r.model, model))
            })
    }

    /// The routes' model names and patterns, as configured (for messages).
    pub fn names(&self) -> Vec<&str> {
        self.routes.iter().map(|r| r.model.as_str()).collect()
    }

    /// The model names a client can send, for `GET /v1/models`: each route of one name, and for a
    /// pattern the configured models of its targets that it matches (`default` for the built-in
    /// route), each once.
    pub fn listed(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |name: &str| {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        };
        for route in &self.routes {
            if !is_pattern(&route.model) {
                add(&route.model);
                continue;
            }
            if route.model == DEFAULT_ROUTE {
                add("default");
            }
            for target in route.engines.whole.targets() {
                let model = target
                    .model
                    .as_deref()
                    .unwrap_or_else(|| target.provider.default_model());
                if matches(&route.model, model) {
                    add(model);
                }
            }
        }
        names
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The engine the operator's prompts go through: the first route's (every engine shares the
    /// breakers, which the control plane reaches by provider).
    pub fn default_engine(&self) -> Option<FailoverEngine> {
        self.routes.first().map(|route| route.engines.whole.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_matches_any_run_of_characters() {
        for (pattern, name, expected) in [
            ("*", "anything", true),
            ("*", "", true),
            ("claude-*", "claude-sonnet-4-5", true),
            ("claude-*", "claude-", true),
            ("claude-*", "gpt-5", false),
            ("*-mini", "gpt-5-mini", true),
            ("*-mini", "gpt-5", false),
            ("gpt-*-mini", "gpt-4o-mini", true),
            ("gpt-*-mini", "gpt-mini", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*o*", "gpt-4o", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(matches(pattern, name), expected, "{pattern} ~ {name}");
        }
        assert!(is_pattern("claude-*") && !is_pattern("default"));
    }
}
