//! Shared HTTP transport for the protocol clients. (Being written.)

use super::{ErrorClass, Phase, ProviderError, Timeouts};

/// The reqwest client every protocol client shares.
pub fn client(timeouts: &Timeouts) -> Result<reqwest::Client, ProviderError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .build()
        .map_err(|e| ProviderError::new("http", ErrorClass::Connect, Phase::Connect, e.to_string()))
}
