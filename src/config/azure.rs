//! An Azure provider's settings in `[[providers]]`: `deployment`, `api_version` and
//! `ad_token_env`, checked as they are read (so a bad value's error names its line).

use serde::{Deserialize, Deserializer};

use super::providers::ProviderEntry;
use crate::protocol::Protocol;
use crate::protocol::azure as wire;
use crate::provider::ApiKey;
use crate::provider::azure::{Auth, Settings};

/// A deployment's name: what Azure allows in one (letters, digits, `-`, `_`, `.`).
pub(super) fn deployment<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name = String::deserialize(d)?;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(serde::de::Error::custom(format!(
            "deployment `{name}` is not a deployment name: use 1 to 64 letters, digits, `-`, `_` \
             and `.` (as in the Azure portal)"
        )));
    }
    Ok(Some(name))
}

/// `v1`, or a date version: `2024-10-21`, `2025-04-01-preview`.
pub(super) fn api_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let version = String::deserialize(d)?;
    let date = version.strip_suffix("-preview").unwrap_or(&version);
    let is_date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok() && date.len() == 10;
    if version != wire::V1 && !is_date {
        return Err(serde::de::Error::custom(format!(
            "api_version `{version}` is not an Azure OpenAI API version: use a date like \
             `{}` (optionally `-preview`), or `v1` for the v1 path",
            wire::DEFAULT_API_VERSION
        )));
    }
    Ok(Some(version))
}

/// An Azure provider's Entra ID token when its variable has one (it is then the credential sent,
/// as the official client prefers it), and its settings. Other protocols: nothing, defaults.
pub(super) fn credential(
    entry: &ProviderEntry,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<ApiKey>, Settings) {
    if entry.protocol != Protocol::Azure {
        return (None, Settings::default());
    }
    let var = entry.ad_token_env.as_deref().unwrap_or(wire::AD_TOKEN_ENV);
    let token = env(var).filter(|t| !t.trim().is_empty());
    let settings = Settings {
        deployment: entry.deployment.clone(),
        api_version: entry
            .api_version
            .clone()
            .unwrap_or_else(|| wire::DEFAULT_API_VERSION.to_string()),
        auth: if token.is_some() {
            Auth::EntraToken
        } else {
            Auth::ApiKey
        },
    };
    (token.map(|t| ApiKey::new(t.trim())), settings)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::config::Config;
    use crate::provider::Timeouts;
    use crate::provider::azure::Auth;

    const AZURE: &str = "[[providers]]\nname = \"az\"\nprotocol = \"azure\"\nmodel = \"gpt-4o\"\n\
                         base_url = \"https://r.openai.azure.com\"\n";

    #[test]
    fn settings_default_and_the_token_wins_over_the_key() {
        let c = Config::parse(AZURE, "t.toml").unwrap();
        let key = |v: &str| (v == "AZURE_OPENAI_API_KEY").then(|| "k".to_string());
        let r = c.providers[0].resolve(Timeouts::default(), &key);
        assert_eq!(r.api_key.expose(), "k");
        assert_eq!(r.azure.auth, Auth::ApiKey);
        assert_eq!(r.azure.api_version, "2024-10-21");
        assert_eq!(r.azure.deployment, None);
        let both = |v: &str| match v {
            "AZURE_OPENAI_API_KEY" => Some("k".to_string()),
            "AZURE_OPENAI_AD_TOKEN" => Some("tok".to_string()),
            _ => None,
        };
        let r = c.providers[0].resolve(Timeouts::default(), &both);
        assert_eq!(
            (r.api_key.expose(), r.azure.auth),
            ("tok", Auth::EntraToken)
        );
        let token_only = |v: &str| (v == "AZURE_OPENAI_AD_TOKEN").then(|| "tok".to_string());
        assert_eq!(c.providers[0].missing_key(&token_only), None);
        assert_eq!(
            c.providers[0].missing_key(&|_| None),
            Some("AZURE_OPENAI_API_KEY")
        );
    }

    #[test]
    fn bad_settings_are_located_errors() {
        for (line, want) in [
            ("api_version = \"latest\"\n", "api_version `latest`"),
            ("deployment = \"a/b\"\n", "deployment `a/b`"),
        ] {
            let text = format!("{AZURE}{line}");
            let err = Config::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("t.toml:6"), "{err}");
        }
        let text = format!("{AZURE}api_version = \"v1\"\ndeployment = \"prod-4o\"\n");
        let c = Config::parse(&text, "t.toml").unwrap();
        let r = c.providers[0].resolve(Timeouts::default(), &|_| None);
        assert_eq!(r.azure.api_version, "v1");
        assert_eq!(r.azure.deployment.as_deref(), Some("prod-4o"));
    }
}
