//! The secrets this process holds (every provider's key, the gateway's token, credentials in a base
//! URL) and their removal from anything that came from outside: an upstream may echo what it was
//! sent in any field, header or body, and what it sends reaches clients, events, recordings, logs,
//! reports and exports.
//!
//! Text is redacted where it enters (the provider transport), before anything cuts it: a cut could
//! leave most of a key behind, out of reach of an exact match. A fragment of at least
//! [`MIN_FRAGMENT`] characters from either end of a secret counts as the secret, so a key that was
//! cut (by the upstream, or across two stream events) does not survive in part either.

use crate::text::{ceil_boundary, floor_boundary};
use std::borrow::Cow;
use std::sync::Arc;

/// What a secret becomes.
pub const REDACTED: &str = "<redacted>";

/// The shortest run of a secret's first or last characters that is treated as the secret. Shorter
/// runs are left alone: real keys share public prefixes (`sk-ant-api03-`, 13 characters) that
/// ordinary text may mention.
pub const MIN_FRAGMENT: usize = 16;

/// A set of secrets, cheap to clone and share.
#[derive(Clone, Default)]
pub struct Secrets(Arc<[Held]>);

/// A secret and the searchers for its first and last [`MIN_FRAGMENT`] bytes, built once: every
/// stream event of every provider is searched.
struct Held {
    secret: Box<str>,
    head: memchr::memmem::Finder<'static>,
    tail: memchr::memmem::Finder<'static>,
}

impl Held {
    fn new(secret: Box<str>) -> Held {
        let bytes = secret.as_bytes();
        let len = bytes.len().min(MIN_FRAGMENT);
        Held {
            head: memchr::memmem::Finder::new(&bytes[..len]).into_owned(),
            tail: memchr::memmem::Finder::new(&bytes[bytes.len() - len..]).into_owned(),
            secret,
        }
    }

    /// Where the secret and its long end fragments occur in `text`, as byte ranges.
    fn find(&self, text: &[u8], spans: &mut Vec<(usize, usize)>) {
        let secret = self.secret.as_bytes();
        // Runs that begin like the secret, extended as far as they go on matching it.
        for start in self.head.find_iter(text) {
            spans.push((start, start + common_prefix(&text[start..], secret)));
        }
        // Runs that end like the secret, extended backwards.
        let len = self.tail.needle().len();
        for start in self.tail.find_iter(text) {
            let end = start + len;
            spans.push((end - common_suffix(&text[..end], secret), end));
        }
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} held)", self.0.len())
    }
}

impl Secrets {
    /// The non-empty secrets among `secrets`, without duplicates.
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let mut held: Vec<Box<str>> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if !secret.is_empty() && !held.iter().any(|s| &**s == secret) {
                held.push(secret.into());
            }
        }
        Secrets(held.into_iter().map(Held::new).collect())
    }

    /// These secrets and `more`.
    pub fn with<S: AsRef<str>>(&self, more: impl IntoIterator<Item = S>) -> Self {
        let mine = self.0.iter().map(|h| h.secret.to_string());
        Secrets::new(mine.chain(more.into_iter().map(|s| s.as_ref().to_string())))
    }

    /// Whether `secret` is one of these.
    pub fn holds(&self, secret: &str) -> bool {
        self.0.iter().any(|h| &*h.secret == secret)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every secret, and every long fragment of one, replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut spans = Vec::new();
        for held in self.0.iter() {
            held.find(text.as_bytes(), &mut spans);
        }
        if spans.is_empty() {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(replace_spans(text, spans))
        }
    }

    /// [`Secrets::redact`] in place.
    pub fn scrub(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }

    /// [`Secrets::scrub`] on an optional field.
    pub fn scrub_opt(&self, text: &mut Option<String>) {
        if let Some(text) = text {
            self.scrub(text);
        }
    }
}

/// `text` with the (possibly overlapping) `spans` replaced, one [`REDACTED`] per run of them.
fn replace_spans(text: &str, mut spans: Vec<(usize, usize)>) -> String {
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut open = false;
    for (start, end) in spans {
        // A run that stopped inside a character is widened to the character's boundaries.
        let start = floor_boundary(text, start);
        let end = ceil_boundary(text, end);
        if end <= at && open {
            continue;
        }
        if start > at || !open {
            out.push_str(&text[at..start.max(at)]);
            out.push_str(REDACTED);
            open = true;
        }
        at = at.max(end);
    }
    out.push_str(&text[at..]);
    out
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// `https://user:key@host/v1?key=…#x` → `https://host/v1`: user info, query and fragment can carry
/// credentials; the host and path are all a reader needs.
pub fn url_for_display(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or("");
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// The credentials a base URL carries: its user info, and the values of query parameters whose
/// names say they hold one (`key`, `api_key`, `token`, `sig`, …). Both in their written and their
/// decoded form, since either may be echoed.
pub fn url_secrets(url: &str) -> Vec<String> {
    const SECRET_NAMES: [&str; 7] = ["key", "token", "secret", "sig", "pass", "auth", "cred"];
    let mut found = Vec::new();
    let mut add = |value: &str| {
        if !value.is_empty() {
            found.push(value.to_string());
            let decoded = percent_decode(value);
            if decoded != value {
                found.push(decoded);
            }
        }
    };
    let without_fragment = url.split('#').next().unwrap_or("");
    let (before_query, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    if let Some((_, rest)) = before_query.split_once("://") {
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    add(user);
                    add(password);
                }
                None => add(userinfo),
            }
        }
    }
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = name.to_ascii_lowercase();
        if SECRET_NAMES.iter().any(|s| name.contains(s)) {
            add(value);
        }
    }
    found
}

/// `%41` → `A`, `+` → space; invalid escapes stay as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "sk-ant-api03-Zq8vN2xLr7TgYp4Wm1KcHd";

    #[test]
    fn whole_secrets_go_wherever_they_are() {
        let s = Secrets::new([KEY, "gateway-token-123"]);
        assert_eq!(
            s.redact(&format!("bad key {KEY}; again:{KEY}.")),
            "bad key <redacted>; again:<redacted>."
        );
        assert_eq!(s.redact("gateway-token-123"), "<redacted>");
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
        assert_eq!(s.redact(""), "");
    }

    #[test]
    fn a_long_fragment_from_either_end_is_the_secret() {
        let s = Secrets::new([KEY]);
        // Cut at every length: what is left is either redacted or shorter than MIN_FRAGMENT.
        for cut in 0..=KEY.len() {
            let (head, tail) = KEY.split_at(cut);
            for text in [format!("x {head}"), format!("{tail} y")] {
                let out = s.redact(&text);
                let leaked = if text.starts_with("x ") { head } else { tail };
                if leaked.len() >= MIN_FRAGMENT {
                    assert!(!out.contains(leaked), "cut {cut}: {out}");
                    assert!(out.contains(REDACTED), "cut {cut}: {out}");
                } else {
                    assert_eq!(out, text, "a short run is left alone");
                }
            }
        }
        // The public prefix every key shares is not a secret.
        assert_eq!(
            s.redact("keys look like sk-ant-api03-…"),
            "keys look like sk-ant-api03-…"
        );
    }

    #[test]
    fn overlapping_and_adjacent_matches_are_one_redaction() {
        let s = Secrets::new([KEY]);
        let doubled = format!("{KEY}{KEY}");
        assert_eq!(s.redact(&doubled), "<redacted>");
        let s = Secrets::new(["abcdefghijklmnopqrstuvwxyz", "mnopqrstuvwxyz0123456789"]);
        assert_eq!(
            s.redact("<abcdefghijklmnopqrstuvwxyz0123456789>"),
            "<<redacted>>"
        );
    }

    #[test]
    fn short_secrets_match_only_whole() {
        let s = Secrets::new(["hunter2"]);
        assert_eq!(s.redact("pw hunter2 hunter"), "pw <redacted> hunter");
    }

    #[test]
    fn non_ascii_text_keeps_its_characters() {
        let s = Secrets::new(["ééééééééééééééééé-key"]);
        let out = s.redact("début ééééééééééééééééé-key fin");
        assert_eq!(out, "début <redacted> fin");
        let out = s.redact("ééé");
        assert_eq!(out, "ééé");
    }

    #[test]
    fn debug_shows_no_secret() {
        let s = Secrets::new([KEY]);
        assert!(!format!("{s:?}").contains("sk-"));
    }

    #[test]
    fn urls_lose_credentials_for_display_and_give_them_up() {
        let url = "https://user:p%40ss@api.example.com/v1?api-version=2024&key=AIzaSecret&x=1#frag";
        assert_eq!(url_for_display(url), "https://api.example.com/v1");
        let found = url_secrets(url);
        for want in ["user", "p%40ss", "p@ss", "AIzaSecret"] {
            assert!(found.iter().any(|f| f == want), "{want} in {found:?}");
        }
        assert!(!found.iter().any(|f| f == "2024" || f == "1"), "{found:?}");
        assert!(url_secrets("http://127.0.0.1:8080/v1").is_empty());
    }
}
