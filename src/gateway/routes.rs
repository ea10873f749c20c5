//! The gateway's routes: the model name a client sends picks a chain, and how the reply streams.

use color_eyre::eyre::{Result, WrapErr};

use crate::config::{RouteEntry, RouteMode};
use crate::engine::failover::{FailoverEngine, MidStreamPolicy};
use crate::event::Source;
use crate::provider::Protocol;
use crate::session::Setup;

/// One route, with its two engines over the same chain (and the same breakers).
#[derive(Clone)]
pub struct Route {
    /// The model name clients send, or a pattern of them (`claude-*`, `*`: `*` matches any run of
    /// characters).
    pub model: String,
    pub chain: String,
    pub mode: RouteMode,
    pub passthrough: bool,
    /// For streaming clients of a `live` route: text the client has seen is never withdrawn, so a
    /// mid-stream failure continues on a prefill-capable target or ends in an error.
    live: FailoverEngine,
    /// For everything else (buffered routes, non-streaming clients): the chain's own mid-stream
    /// policy, since the client sees nothing until the reply is complete.
    whole: FailoverEngine,
}

impl Route {
    /// The engine for a client that streams (`stream: true`) or not.
    pub fn engine(&self, streaming: bool) -> &FailoverEngine {
        if streaming && self.mode == RouteMode::Live {
            &self.live
        } else {
            &self.whole
        }
    }

    /// What a request naming `model` in `protocol` asks of the targets speaking that protocol: the
    /// model as named on a route by pattern (`default` excepted), nothing on a route by name.
    pub fn as_requested(&self, protocol: Protocol, model: &str) -> Option<(Protocol, String)> {
        (is_pattern(&self.model) && model != "default").then(|| (protocol, model.to_string()))
    }

    /// The provider names of the chain, in order.
    pub fn targets(&self) -> Vec<String> {
        self.whole
            .targets()
            .iter()
            .map(|t| t.provider.name().to_string())
            .collect()
    }
}

/// Every route, in the config's order.
#[derive(Clone)]
pub struct Routes {
    routes: Vec<Route>,
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
    /// Build the routes of the config (or the one `default` route) over `setup`'s providers.
    pub fn build(setup: &Setup) -> Result<Routes> {
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
            let c = setup
                .chain(Some(&chain))
                .wrap_err_with(|| format!("route `{model}`"))?;
            let live_policy = match c.mid_stream {
                MidStreamPolicy::Fail => MidStreamPolicy::Fail,
                _ => MidStreamPolicy::ContinueOrFail,
            };
            let live = setup
                .engine_for(&c.name, &c.entries, live_policy, c.hedge)
                .wrap_err_with(|| format!("route `{model}`"))?
                .with_source(Source::Gateway);
            let whole = setup
                .engine_for(&c.name, &c.entries, c.mid_stream, c.hedge)
                .wrap_err_with(|| format!("route `{model}`"))?
                .with_source(Source::Gateway);
            routes.push(Route {
                model,
                chain: c.name,
                mode,
                passthrough,
                live,
                whole,
            });
        }
        Ok(Routes { routes })
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
            for target in route.whole.targets() {
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
        self.routes.first().map(|route| route.whole.clone())
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
