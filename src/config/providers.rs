//! `[[providers]]`, `[[pools]]`, `[[chains]]` and `[[routes]]`: the real providers, the pools of
//! equivalent ones, the chains of targets the engine fails over along, and the gateway's routes
//! from a model name to a chain.

use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

use super::values::context_window;
use crate::engine::failover::{HedgeTrigger, MidStreamPolicy};
use crate::event::PoolStrategy;
use crate::parse::parse_duration;
use crate::provider::{ApiKey, Protocol, ProviderConfig, Timeouts};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub name: Spanned<String>,
    /// `anthropic` (Messages), `openai` (Chat Completions, and the servers compatible with it),
    /// `openai_responses` (OpenAI's Responses API: OpenAI's key, base URL and variables) or
    /// `gemini` (Google's Gemini API, and Vertex AI's flavour of it: docs/gemini.md).
    pub protocol: Protocol,
    pub model: String,
    /// Explicit base URL; else the value of `base_url_env`; else the protocol's public endpoint.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub base_url_env: Option<String>,
    /// The environment variable holding the key (default `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Accepts a partial assistant reply to continue from (default: yes for Anthropic, no for
    /// OpenAI's two APIs).
    #[serde(default)]
    pub accepts_prefill: Option<bool>,
    /// Context window in tokens, for failing over `context_length` errors to a larger model.
    #[serde(default, deserialize_with = "context_window")]
    pub context_window: Option<u64>,
    /// One breaker for the provider (`provider`, the default) or one per model (`model`).
    #[serde(default)]
    pub breaker: BreakerScope,
    /// Bedrock only: the AWS region (default `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
    /// `region`, else `us-east-1`), which picks the endpoint and signs the requests.
    #[serde(default)]
    pub region: Option<String>,
    /// Bedrock only: the profile of the shared AWS files to take credentials from (default
    /// `AWS_PROFILE`, else the environment's keys, else `default`).
    #[serde(default)]
    pub profile: Option<String>,
    /// Azure: the deployment to call (default: the target's model names it).
    #[serde(default, deserialize_with = "super::azure::deployment")]
    pub deployment: Option<String>,
    /// Azure: the `api-version` of the deployment paths (default `2024-10-21`), or `v1` for the
    /// v1 path (`/openai/v1/chat/completions`, no version).
    #[serde(default, deserialize_with = "super::azure::api_version")]
    pub api_version: Option<String>,
    /// Azure: the variable holding an Entra ID token (default `AZURE_OPENAI_AD_TOKEN`); when it
    /// has one, it is sent as `Authorization: Bearer` instead of the key (as `openai.AzureOpenAI`
    /// prefers it).
    #[serde(default)]
    pub ad_token_env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerScope {
    #[default]
    Provider,
    Model,
}

/// A pool of equivalent providers (keys, regions, deployments of one model): a chain target that
/// names it tries its members, in the order its strategy picks for each request, before the
/// chain's next target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolEntry {
    pub name: Spanned<String>,
    /// How each request orders the members.
    #[serde(default)]
    pub strategy: PoolStrategy,
    pub members: Vec<Spanned<MemberEntry>>,
}

impl PoolEntry {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }
}

/// The heaviest weight a pool member may have: far above any sensible share, low enough that
/// weights never overflow when summed.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// A pool member: a provider name (weight 1), or `{ provider = "name", weight = 2 }`.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberEntry {
    pub provider: String,
    pub weight: u32,
}

impl<'de> Deserialize<'de> for MemberEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MemberVisitor)
    }
}

/// Reads a member by hand rather than as an untagged enum, so that a bad weight or an unknown key
/// gets its own message instead of "did not match any variant".
struct MemberVisitor;

impl<'de> serde::de::Visitor<'de> for MemberVisitor {
    type Value = MemberEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a provider name, or a table like { provider = \"name\", weight = 2 }")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MemberEntry, E> {
        Ok(MemberEntry {
            provider: v.to_string(),
            weight: 1,
        })
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<MemberEntry, A::Error> {
        use serde::de::Error;
        let (mut provider, mut weight) = (None, 1);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "provider" => provider = Some(map.next_value::<String>()?),
                "weight" => {
                    let w: i64 = map.next_value()?;
                    weight = u32::try_from(w)
                        .ok()
                        .filter(|w| (1..=MAX_WEIGHT).contains(w))
                        .ok_or_else(|| {
                            A::Error::custom(format!(
                                "pools.members.weight: {w} is out of range: use a whole number \
                                 from 1 to {MAX_WEIGHT} (leave a member out rather than weigh it 0)"
                            ))
                        })?;
                }
                other => return Err(A::Error::unknown_field(other, &["provider", "weight"])),
            }
        }
        let provider = provider.ok_or_else(|| A::Error::missing_field("provider"))?;
        Ok(MemberEntry { provider, weight })
    }
}

/// A named, ordered chain of targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEntry {
    pub name: Spanned<String>,
    pub targets: Vec<Spanned<TargetEntry>>,
    #[serde(default)]
    pub mid_stream: MidStreamPolicy,
    /// `off`, a duration (`2s`) or a percentile of recent first-event latency (`p95`).
    #[serde(default)]
    pub hedge: HedgeSetting,
}

/// A gateway route: requests naming `model` go down `chain`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    /// The model name a client sends to pick this route.
    pub model: Spanned<String>,
    /// The chain to use (`default`: the chain named so, else every provider in order).
    #[serde(default = "default_chain_name")]
    pub chain: Spanned<String>,
    /// What a streaming client sees of a failover after text reached it.
    #[serde(default)]
    pub mode: RouteMode,
    /// Forward the client's own API key to the targets that speak the client's protocol, instead
    /// of the gateway's keys.
    #[serde(default)]
    pub passthrough: bool,
}

fn default_chain_name() -> Spanned<String> {
    Spanned::new(0..0, "default".to_string())
}

/// How a route streams to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteMode {
    /// Forward events as they arrive. A failure after text reached the client continues on a
    /// target that accepts a prefill, else ends the client's stream with an error.
    #[default]
    Live,
    /// Hold the reply until the provider's stream completes: any failover is invisible, at the
    /// cost of first-token latency.
    Buffered,
}

impl RouteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteMode::Live => "live",
            RouteMode::Buffered => "buffered",
        }
    }
}

/// A target: a provider name (or a pool's), or a table naming a provider and a model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TargetEntry {
    Name(String),
    Table {
        provider: String,
        #[serde(default)]
        model: Option<String>,
    },
}

impl TargetEntry {
    pub fn provider(&self) -> &str {
        match self {
            TargetEntry::Name(name) => name,
            TargetEntry::Table { provider, .. } => provider,
        }
    }
    pub fn model(&self) -> Option<&str> {
        match self {
            TargetEntry::Name(_) => None,
            TargetEntry::Table { model, .. } => model.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HedgeSetting(pub Option<HedgeTrigger>);

impl<'de> Deserialize<'de> for HedgeSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_hedge(&text)
            .map(HedgeSetting)
            .map_err(serde::de::Error::custom)
    }
}

fn parse_hedge(text: &str) -> Result<Option<HedgeTrigger>, String> {
    let t = text.trim();
    if t == "off" {
        return Ok(None);
    }
    if let Some(p) = t.strip_prefix('p') {
        let percentile: f64 = p
            .parse()
            .ok()
            .filter(|p| (1.0..=99.9).contains(p))
            .ok_or_else(|| {
                format!("invalid hedge `{text}`: a percentile is written like `p95` (1 to 99.9)")
            })?;
        return Ok(Some(HedgeTrigger::Percentile {
            percentile,
            fallback: Duration::from_secs(2),
        }));
    }
    parse_duration(t)
        .map(|d| Some(HedgeTrigger::After(d)))
        .map_err(|e| {
            format!("{e}; hedge is `off`, a duration like `2s`, or a percentile like `p95`")
        })
}

impl ProviderEntry {
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    fn api_key_var(&self) -> &str {
        self.api_key_env.as_deref().unwrap_or(match self.protocol {
            Protocol::Anthropic => "ANTHROPIC_API_KEY",
            Protocol::Openai | Protocol::OpenaiResponses => "OPENAI_API_KEY",
            Protocol::Gemini => "GEMINI_API_KEY",
            // A Bedrock API key; without one the provider signs with AWS credentials.
            Protocol::Bedrock => "AWS_BEARER_TOKEN_BEDROCK",
            Protocol::Azure => crate::protocol::azure::API_KEY_ENV,
        })
    }

    /// The variable read when the key's own is not set: the official Gemini client's second
    /// name for its key.
    fn api_key_fallback_var(&self) -> Option<&str> {
        (self.api_key_env.is_none() && self.protocol == Protocol::Gemini)
            .then_some("GOOGLE_API_KEY")
    }

    /// The key, from its variable or the fallback one.
    fn api_key_from(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let set = |var: &str| env(var).filter(|v| !v.is_empty());
        set(self.api_key_var()).or_else(|| self.api_key_fallback_var().and_then(set))
    }

    fn base_url_var(&self) -> &str {
        self.base_url_env.as_deref().unwrap_or(match self.protocol {
            Protocol::Anthropic => "ANTHROPIC_BASE_URL",
            Protocol::Openai | Protocol::OpenaiResponses => "OPENAI_BASE_URL",
            Protocol::Gemini => "GOOGLE_GEMINI_BASE_URL",
            // The AWS SDKs' own variable for a Bedrock Runtime endpoint.
            Protocol::Bedrock => "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
            Protocol::Azure => crate::protocol::azure::ENDPOINT_ENV,
        })
    }

    /// Resolve URL and key from the config and the environment.
    pub fn resolve(
        &self,
        timeouts: Timeouts,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> ProviderConfig {
        let aws = (self.protocol == Protocol::Bedrock).then(|| {
            crate::provider::aws::AwsAuth::resolve(
                self.region.as_deref(),
                self.profile.as_deref(),
                env,
            )
        });
        let base_url = self
            .base_url
            .clone()
            .or_else(|| env(self.base_url_var()).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| match (self.protocol, &aws) {
                (Protocol::Anthropic, _) => "https://api.anthropic.com".to_string(),
                (Protocol::Openai | Protocol::OpenaiResponses, _) => {
                    "https://api.openai.com/v1".to_string()
                }
                // Azure has no public endpoint: each resource has its own.
                (Protocol::Azure, _) => "https://YOUR-RESOURCE.openai.azure.com".to_string(),
                (Protocol::Gemini, _) => "https://generativelanguage.googleapis.com".to_string(),
                (Protocol::Bedrock, auth) => crate::protocol::bedrock::regional_endpoint(
                    auth.as_ref()
                        .map_or(crate::provider::aws::DEFAULT_REGION, |a| a.region.as_str()),
                ),
            });
        let (api_key, azure) = super::azure::credential(self, env);
        ProviderConfig {
            api_key: api_key
                .unwrap_or_else(|| ApiKey::new(self.api_key_from(env).unwrap_or_default())),
            model: self.model.clone(),
            timeouts,
            aws,
            azure,
            ..ProviderConfig::new(self.name(), self.protocol, base_url.trim_end_matches('/'))
        }
    }

    /// The variable holding this provider's key, if it is not set. A Bedrock provider has a key
    /// when it has a bearer token or AWS credentials (then nothing is missing).
    pub fn missing_key(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<&str> {
        let var = self.api_key_var();
        let has_key =
            self.api_key_from(env).is_some() || super::azure::credential(self, env).0.is_some();
        let signs = || {
            self.protocol == Protocol::Bedrock
                && crate::provider::aws::AwsAuth::resolve(
                    self.region.as_deref(),
                    self.profile.as_deref(),
                    env,
                )
                .credentials
                .is_some()
        };
        (!has_key && !signs()).then_some(var)
    }
}

pub(super) fn default_providers() -> Vec<ProviderEntry> {
    let entry = |name: &str, protocol, model: &str| ProviderEntry {
        name: Spanned::new(0..0, name.to_string()),
        protocol,
        model: model.to_string(),
        base_url: None,
        base_url_env: None,
        api_key_env: None,
        accepts_prefill: None,
        context_window: None,
        breaker: BreakerScope::Provider,
        region: None,
        profile: None,
        deployment: None,
        api_version: None,
        ad_token_env: None,
    };
    vec![
        // Current as of assets/pricing.toml's date, and priced there (a test keeps them so).
        entry("anthropic", Protocol::Anthropic, "claude-sonnet-5-5"),
        entry("openai", Protocol::Openai, "gpt-6.2-sol"),
    ]
}
