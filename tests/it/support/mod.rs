//! What several test modules share: the simulated providers' fast configuration, the simulator on
//! loopback, event builders, a scripted upstream, the recorded provider fixtures, and the real binary
//! as a demo gateway or in a pseudo-terminal, and its `/metrics` as a scraper reads them.

pub mod demo_config;
pub mod events;
pub mod gateway;
pub mod provider;
pub mod pty;
pub mod scrape;
pub mod sim;
pub mod upstream;
