//! AWS credentials and SigV4 signing for Bedrock.
//!
//! The credentials come from the standard sources the AWS SDKs read first, in their order: the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then a
//! profile's static keys in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
//! `~/.aws/credentials`) and config file (`AWS_CONFIG_FILE`, default `~/.aws/config`). The profile
//! is the provider's `profile` setting, else `AWS_PROFILE`, else `default`; a configured profile
//! is read from the files only, as the SDKs do when told a profile. They are read once, when the
//! provider is set up. Not read: SSO, `credential_process`, web identity, `source_profile` role
//! chains and instance metadata (each is a network or process call with its own failure modes;
//! `aws-config` does them all, at the cost of a large dependency tree — see docs/bedrock.md).
//!
//! The two files are INI as the AWS CLI writes them; the reader here takes sections, `key =
//! value` lines and comments, and skips nested (indented) sub-properties.
//!
//! Signing is AWS's own crate's (`aws-sigv4`). Neither the secret key, the session token nor a
//! signature is ever logged, shown or passed into an event: the secrets are listed with the
//! process's others (see [`AwsAuth::secrets`]) and `Debug` never prints them.

use std::collections::HashMap;
use std::fmt;
use std::time::SystemTime;

/// Static AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// Where they were read (`environment`, `profile default in /home/me/.aws/credentials`).
    pub source: String,
}

impl AwsCredentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
        source: impl Into<String>,
    ) -> Self {
        AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|t| !t.is_empty()),
            source: source.into(),
        }
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// What a Bedrock client signs with: the region, and the credentials when any were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAuth {
    pub region: String,
    pub credentials: Option<AwsCredentials>,
}

/// The region used when neither the config, the environment nor the profile names one.
pub const DEFAULT_REGION: &str = "us-east-1";

impl AwsAuth {
    /// The region and credentials for a provider with these settings, from `env` and the files
    /// it points to.
    pub fn resolve(
        region: Option<&str>,
        profile: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> AwsAuth {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let named = profile.map(str::to_string);
        let profile_name = named
            .clone()
            .or_else(|| var("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let files = SharedFiles::read(env);
        let from_env = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) if named.is_none() => Some(AwsCredentials::new(
                id,
                secret,
                var("AWS_SESSION_TOKEN"),
                "environment",
            )),
            _ => None,
        };
        let credentials = from_env.or_else(|| files.credentials(&profile_name));
        let region = region
            .map(str::to_string)
            .or_else(|| var("AWS_REGION"))
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| files.setting(&profile_name, "region"))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        AwsAuth {
            region,
            credentials,
        }
    }

    /// The secrets to keep out of everything shown: the secret key and the session token.
    pub fn secrets(&self) -> Vec<String> {
        self.credentials
            .iter()
            .flat_map(|c| {
                std::iter::once(c.secret_access_key.clone()).chain(c.session_token.clone())
            })
            .collect()
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`, and `x-amz-security-token` for
    /// temporary credentials) for a POST of `body` to `url` with `headers`, signed for Bedrock.
    pub fn sign(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        now: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let Some(c) = &self.credentials else {
            return Ok(Vec::new());
        };
        let identity = aws_credential_types::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            c.session_token.clone(),
            None,
            "breakerbox",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(crate::protocol::bedrock::SIGNING_NAME)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into();
        let request = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("cannot sign the request: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("cannot sign the request: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect())
    }
}

/// The shared credentials and config files, parsed.
#[derive(Debug, Default)]
struct SharedFiles {
    credentials: Profiles,
    credentials_path: String,
    config: Profiles,
    config_path: String,
}

type Profiles = HashMap<String, HashMap<String, String>>;

impl SharedFiles {
    fn read(env: &dyn Fn(&str) -> Option<String>) -> SharedFiles {
        let home = env("HOME")
            .or_else(|| env("USERPROFILE"))
            .unwrap_or_default();
        let path = |var: &str, file: &str| {
            env(var)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| format!("{home}/.aws/{file}"))
        };
        let credentials_path = path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_path = path("AWS_CONFIG_FILE", "config");
        // A missing file is the common case (no profile set up), not an error.
        let load = |path: &str, config: bool| {
            std::fs::read_to_string(path)
                .map(|text| parse_profiles(&text, config))
                .unwrap_or_default()
        };
        SharedFiles {
            credentials: load(&credentials_path, false),
            config: load(&config_path, true),
            credentials_path,
            config_path,
        }
    }

    /// A profile's static keys: the credentials file's, else the config file's.
    fn credentials(&self, profile: &str) -> Option<AwsCredentials> {
        [
            (&self.credentials, &self.credentials_path),
            (&self.config, &self.config_path),
        ]
        .into_iter()
        .find_map(|(profiles, path)| {
            let p = profiles.get(profile)?;
            let id = p.get("aws_access_key_id").filter(|v| !v.is_empty())?;
            let secret = p.get("aws_secret_access_key").filter(|v| !v.is_empty())?;
            Some(AwsCredentials::new(
                id.clone(),
                secret.clone(),
                p.get("aws_session_token").cloned(),
                format!("profile {profile} in {path}"),
            ))
        })
    }

    /// A profile's setting from the config file (then the credentials file, where some put it).
    fn setting(&self, profile: &str, key: &str) -> Option<String> {
        [&self.config, &self.credentials]
            .into_iter()
            .find_map(|profiles| profiles.get(profile)?.get(key).cloned())
            .filter(|v| !v.is_empty())
    }
}

/// The profiles of a shared file. In the config file a profile's section is `[profile NAME]`
/// (`[default]` alone may go without the prefix) and other sections (`[sso-session …]`,
/// `[services …]`) are not profiles; in the credentials file a section is the profile's name.
fn parse_profiles(text: &str, config: bool) -> Profiles {
    let mut profiles: Profiles = HashMap::new();
    let mut current: Option<String> = None;
    let mut in_sub_properties = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(section) = trimmed
            .strip_prefix('[')
            .and_then(|s| s.split_once(']'))
            .map(|(name, _)| name.trim())
        {
            current = profile_name(section, config);
            in_sub_properties = false;
            continue;
        }
        let indented = line.starts_with([' ', '\t']);
        if indented && in_sub_properties {
            continue;
        }
        let (Some(profile), Some((key, value))) = (&current, trimmed.split_once('=')) else {
            continue;
        };
        let value = strip_comment(value.trim());
        in_sub_properties = value.is_empty();
        profiles
            .entry(profile.clone())
            .or_default()
            .insert(key.trim().to_ascii_lowercase(), value.to_string());
    }
    profiles
}

fn profile_name(section: &str, config: bool) -> Option<String> {
    if !config {
        return Some(section.to_string());
    }
    match section.split_once(char::is_whitespace) {
        Some(("profile", name)) => Some(name.trim().to_string()),
        None if section == "default" => Some(section.to_string()),
        _ => None,
    }
}

/// A value without a trailing ` # comment` or ` ; comment` (a `#` inside a value stays).
fn strip_comment(value: &str) -> &str {
    let cut = value
        .match_indices([' ', '\t'])
        .find(|(i, _)| matches!(value.as_bytes().get(i + 1), Some(b'#' | b';')))
        .map(|(i, _)| i);
    cut.map_or(value, |i| value[..i].trim_end())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn both_files_parse_as_the_cli_writes_them() {
        let config = "[default]\nregion = eu-west-1\n\n[profile work]\nregion=us-west-2 # mine\n\
                      s3 =\n  max_concurrent_requests = 20\noutput = json\n[sso-session x]\n\
                      sso_region = us-east-1\n";
        let p = parse_profiles(config, true);
        assert_eq!(p["default"]["region"], "eu-west-1");
        assert_eq!(p["work"]["region"], "us-west-2");
        assert_eq!(p["work"]["output"], "json");
        assert!(!p["work"].contains_key("max_concurrent_requests"));
        assert!(!p.contains_key("x") && !p.contains_key("sso-session x"));
        let creds = "; comment\n[work]\naws_access_key_id = AKIDWORK\n\
                     AWS_Secret_Access_Key = s#cret\n";
        let p = parse_profiles(creds, false);
        assert_eq!(p["work"]["aws_secret_access_key"], "s#cret");
    }

    #[test]
    fn the_environment_comes_first_unless_a_profile_is_named() {
        let dir = std::env::temp_dir().join(format!("bb-aws-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        let config = dir.join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id=AKIDFILE\naws_secret_access_key=filesecret\n\
             [work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=worksecret\n\
             aws_session_token=worktoken\n",
        )
        .unwrap();
        std::fs::write(&config, "[profile work]\nregion = ap-south-1\n").unwrap();
        let (c, k) = (creds.to_str().unwrap(), config.to_str().unwrap());
        let env = env_of(&[
            ("AWS_SHARED_CREDENTIALS_FILE", c),
            ("AWS_CONFIG_FILE", k),
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ("AWS_REGION", "eu-central-1"),
        ]);
        let auth = AwsAuth::resolve(None, None, &env);
        let got = auth.credentials.as_ref().unwrap();
        assert_eq!(
            (got.access_key_id.as_str(), got.source.as_str()),
            ("AKIDENV", "environment")
        );
        assert_eq!(auth.region, "eu-central-1");
        let auth = AwsAuth::resolve(None, Some("work"), &env);
        assert_eq!(auth.credentials.as_ref().unwrap().access_key_id, "AKIDWORK");
        assert_eq!(auth.secrets(), vec!["worksecret", "worktoken"]);
        let env = env_of(&[
            ("AWS_SHARED_CREDENTIALS_FILE", c),
            ("AWS_CONFIG_FILE", k),
            ("AWS_PROFILE", "work"),
        ]);
        let auth = AwsAuth::resolve(None, None, &env);
        assert_eq!(
            (
                auth.region.as_str(),
                auth.credentials.unwrap().access_key_id.as_str()
            ),
            ("ap-south-1", "AKIDWORK")
        );
        let auth = AwsAuth::resolve(
            Some("us-east-2"),
            None,
            &env_of(&[("HOME", "/nonexistent")]),
        );
        assert_eq!(
            (auth.region.as_str(), auth.credentials),
            ("us-east-2", None)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn signing_adds_a_sigv4_authorization_and_debug_hides_the_secrets() {
        let auth = AwsAuth {
            region: "us-west-2".into(),
            credentials: Some(AwsCredentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                Some("tok3n".into()),
                "test",
            )),
        };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let headers = auth
            .sign(
                "https://bedrock-runtime.us-west-2.amazonaws.com/model/m%3A0/converse-stream",
                &[("content-type", "application/json")],
                b"{}",
                at,
            )
            .unwrap();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let authz = get("authorization").unwrap();
        assert!(
            authz.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/bedrock/aws4_request, SignedHeaders="
            ),
            "{authz}"
        );
        assert!(authz.contains("Signature="), "{authz}");
        assert_eq!(get("x-amz-date"), Some("20231114T221320Z"));
        assert_eq!(get("x-amz-security-token"), Some("tok3n"));
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("wJalr") && !shown.contains("tok3n"),
            "{shown}"
        );
    }
}
