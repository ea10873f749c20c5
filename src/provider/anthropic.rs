//! (Being written.)

use super::{Provider, ProviderConfig, ProviderStream, Request};

pub struct AnthropicClient {
    config: ProviderConfig,
    #[allow(dead_code)]
    http: reqwest::Client,
}

impl AnthropicClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        AnthropicClient { config, http }
    }
}

impl Provider for AnthropicClient {
    fn name(&self) -> &str {
        &self.config.name
    }
    fn default_model(&self) -> &str {
        &self.config.model
    }
    fn stream(&self, _request: Request) -> ProviderStream {
        Box::pin(futures::stream::empty())
    }
}
