//! Gateway mode (`breakerbox serve`): agents point their OpenAI or Anthropic base URL here and the
//! engine fails over for them.
//!
//! So far only the wire translation exists ([`wire`]): inbound requests of both protocols into
//! breakerbox's [`Request`](crate::provider::Request), and our
//! [`StreamEvent`](crate::provider::StreamEvent)s and
//! [`ProviderError`](crate::provider::ProviderError)s back out in the caller's protocol. It is not
//! wired into the binary yet.

pub mod wire;
