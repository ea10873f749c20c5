//! The gateway's shared secret: where it comes from, where it is required, and how it is checked.

use color_eyre::eyre::{Result, bail};
use std::net::SocketAddr;

/// Binding anything but loopback exposes `/control` and the upstream keys' spending to the
/// network, so it needs a token.
pub fn check_bind(listen: SocketAddr, token: Option<&str>) -> Result<()> {
    if !listen.ip().is_loopback() && token.is_none() {
        bail!(
            "refusing to listen on {listen} without a token: anyone who can reach it could spend \
             your provider keys and trip your breakers. Give --token-file FILE (or \
             BREAKERBOX_TOKEN), or listen on 127.0.0.1"
        );
    }
    Ok(())
}

/// Compare a presented token with the expected one in time that does not depend on where they
/// differ (only on the lengths), so the token cannot be guessed byte by byte.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

/// The token a request presents: `Authorization: Bearer T` or `x-breakerbox-token: T`.
pub fn presented_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get("x-breakerbox-token")
        .and_then(|v| v.to_str().ok())
    {
        return Some(value.trim());
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::TokenArgs;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-token", "s3cret-tokeN"));
        assert!(!token_matches("s3cret-token", "s3cret-token2"));
        assert!(!token_matches("s3cret-token", "s3cret"));
        assert!(!token_matches("s3cret-token", ""));
        assert!(
            !token_matches("a", "\0"),
            "a shorter expected value is not padded into a match"
        );
    }

    #[test]
    fn binding_beyond_loopback_needs_a_token() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let v6_local: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_bind(local, None).is_ok());
        assert!(check_bind(v6_local, None).is_ok());
        let err = check_bind(any, None).unwrap_err().to_string();
        assert!(err.contains("--token-file"), "{err}");
        assert!(check_bind(any, Some("t")).is_ok());
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        let args = TokenArgs {
            token: Some("s3cret".into()),
            token_file: None,
        };
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn the_presented_token_is_read_from_either_header() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", "Bearer tok".parse().unwrap());
        assert_eq!(presented_token(&headers), Some("tok"));
        headers.insert("x-breakerbox-token", "other".parse().unwrap());
        assert_eq!(presented_token(&headers), Some("other"));
    }
}
