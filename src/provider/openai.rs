//! (Being written.)

use super::{Provider, ProviderConfig, ProviderStream, Request};

pub struct OpenAiClient {
    config: ProviderConfig,
    #[allow(dead_code)]
    http: reqwest::Client,
}

impl OpenAiClient {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        OpenAiClient { config, http }
    }
}

impl Provider for OpenAiClient {
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
