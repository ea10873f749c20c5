//! The gateway's routes: the model name a client sends picks a chain, and how the reply streams.

use color_eyre::eyre::{Result, WrapErr};

use crate::config::{RouteEntry, RouteMode};
use crate::engine::failover::{FailoverEngine, MidStreamPolicy, Target};
use crate::event::Source;
use crate::setup::Setup;

/// One route, with its two engines over the same chain (and the same breakers).
#[derive(Clone)]
pub struct Route {
    /// The model name clients send.
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

/// The route used when the config declares none.
pub const DEFAULT_ROUTE: &str = "default";

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

    /// The route for a model name, exactly as the client sent it.
    pub fn get(&self, model: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.model == model)
    }

    /// The model names that pick a route.
    pub fn names(&self) -> Vec<&str> {
        self.routes.iter().map(|r| r.model.as_str()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The first route's engine widened to every target of every route (each breaker once): what
    /// the operator's trip / reset and prompts act on.
    pub fn control_engine(&self) -> Option<FailoverEngine> {
        let first = self.routes.first()?;
        let mut targets: Vec<Target> = Vec::new();
        for route in &self.routes {
            for target in route.whole.targets() {
                if !targets.iter().any(|t| t.breaker_key == target.breaker_key) {
                    targets.push(target.clone());
                }
            }
        }
        Some(first.whole.with_targets(targets))
    }
}
