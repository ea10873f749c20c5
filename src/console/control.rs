//! What the operator's keys do outside the screen: trip, force or reset a breaker, set a simulated
//! fault, send a prompt, and drive the background load. Each is a command here; its effects come back
//! as events (`operator_action`, `breaker_changed`, `request_started`, …), so they are shown, recorded
//! and replayed like everything else.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::engine::failover::{FailoverEngine, RequestMeta};
use crate::event::{EventKind, Source};
use crate::provider::Request;
use crate::sim::{Fault, Simulator};

use super::ui::{BreakerAction, LoadView};

/// Most background requests in flight at once; beyond it a tick is skipped rather than piling up.
const LOAD_MAX_IN_FLIGHT: usize = 64;
/// Background load rates the `+` / `-` keys step through, requests per second.
const LOAD_STEPS: [f64; 9] = [0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

/// Prompts for the background load: the kind of thing agents send.
const LOAD_PROMPTS: [&str; 8] = [
    "Summarise the last deploy log in three bullet points.",
    "Which of these tests is flaky, and why?",
    "Write a SQL query for yesterday's failed payments.",
    "Explain this stack trace to a new engineer.",
    "Draft a status page update for elevated error rates.",
    "What changed between these two config files?",
    "Suggest a name for a circuit-breaker library.",
    "Translate this error message for a customer.",
];

/// Carries the operator's commands to the engine and the simulator.
pub struct Controller {
    engine: FailoverEngine,
    sim: Option<Arc<Simulator>>,
    load: Option<watch::Sender<LoadView>>,
}

impl Controller {
    pub fn new(engine: FailoverEngine, sim: Option<Arc<Simulator>>) -> Self {
        Controller {
            engine,
            sim,
            load: None,
        }
    }

    /// Start the background load generator, `initial` as given.
    pub fn start_load(&mut self, initial: LoadView) {
        let (tx, rx) = watch::channel(initial);
        tokio::spawn(generate_load(self.engine.clone(), rx));
        self.load = Some(tx);
    }

    pub fn load(&self) -> Option<LoadView> {
        self.load.as_ref().map(|tx| *tx.borrow())
    }

    /// Trip, force closed or reset the breaker(s) of a provider. Returns a line for the status bar.
    pub fn breaker(&self, action: BreakerAction, provider: &str) -> String {
        let shared = self.engine.shared();
        let keys: Vec<&str> = self
            .engine
            .targets()
            .iter()
            .filter(|t| t.provider.name() == provider)
            .map(|t| t.breaker_key.as_str())
            .collect();
        if keys.is_empty() {
            return format!("{provider} is not in the chain");
        }
        let (name, changed) = match action {
            BreakerAction::Trip => (
                "trip",
                keys.iter()
                    .fold(false, |c, k| shared.breakers.force_open(k) | c),
            ),
            BreakerAction::ForceClosed => (
                "force_closed",
                keys.iter()
                    .fold(false, |c, k| shared.breakers.force_closed(k) | c),
            ),
            BreakerAction::Reset => (
                "reset",
                keys.iter().fold(false, |c, k| shared.breakers.reset(k) | c),
            ),
        };
        shared.bus.publish(EventKind::OperatorAction {
            action: name.to_string(),
            provider: Some(provider.to_string()),
            detail: if changed {
                String::new()
            } else {
                "no change".to_string()
            },
        });
        if changed {
            format!("{provider}: {}", action.describe())
        } else {
            format!("{provider}: already so")
        }
    }

    /// Set a simulated provider's fault.
    pub fn set_fault(&self, provider: &str, fault: &str) -> String {
        let Some(sim) = &self.sim else {
            return "faults apply to the simulated providers (demo mode)".to_string();
        };
        let parsed = match fault.parse::<Fault>() {
            Ok(f) => f,
            Err(e) => return format!("fault `{fault}`: {e}"),
        };
        match sim.set_fault(provider, parsed) {
            Ok(()) => {
                self.engine.shared().bus.publish(EventKind::OperatorAction {
                    action: "set_fault".to_string(),
                    provider: Some(provider.to_string()),
                    detail: fault.to_string(),
                });
                format!("{provider}: fault {fault}")
            }
            Err(e) => e.to_string(),
        }
    }

    /// Send the operator's prompt through the engine; the reply arrives as events.
    pub fn send_prompt(&self, text: &str) {
        self.prompter().send_prompt(text);
    }

    /// A handle that sends prompts, for tasks of their own (re-driving a recording).
    pub fn prompter(&self) -> Prompter {
        Prompter {
            engine: self.engine.clone(),
        }
    }

    /// Turn the background load on or off, or step its rate. Returns a line for the status bar.
    pub fn adjust_load(&self, change: LoadChange) -> String {
        let Some(tx) = &self.load else {
            return "no background load here".to_string();
        };
        let mut view = *tx.borrow();
        match change {
            LoadChange::Toggle => view.on = !view.on,
            LoadChange::Faster => view.per_sec = step(view.per_sec, true),
            LoadChange::Slower => view.per_sec = step(view.per_sec, false),
        }
        tx.send_replace(view);
        let state = if view.on { "on" } else { "off" };
        self.engine.shared().bus.publish(EventKind::OperatorAction {
            action: "load".to_string(),
            provider: None,
            detail: format!("{state}, {} requests/s", view.per_sec),
        });
        format!("background load {state}, {} requests/s", view.per_sec)
    }
}

/// Sends prompts through the engine: the reply arrives as events.
#[derive(Clone)]
pub struct Prompter {
    engine: FailoverEngine,
}

impl Prompter {
    pub fn send_prompt(&self, text: &str) {
        let engine = self.engine.clone();
        let meta = RequestMeta {
            prompt: Some(text.to_string()),
            ..RequestMeta::new(Source::Prompt)
        };
        let request = Request::prompt(text);
        tokio::spawn(async move {
            let (_, mut stream) = engine.send(request, meta);
            while stream.next().await.is_some() {}
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadChange {
    Toggle,
    Faster,
    Slower,
}

/// The next rate up (`faster`) or down the table from `rate`, stopping at its ends.
fn step(rate: f64, faster: bool) -> f64 {
    const EPS: f64 = 1e-9;
    if faster {
        LOAD_STEPS
            .iter()
            .copied()
            .find(|r| *r > rate + EPS)
            .unwrap_or(LOAD_STEPS[LOAD_STEPS.len() - 1])
    } else {
        LOAD_STEPS
            .iter()
            .rev()
            .copied()
            .find(|r| *r < rate - EPS)
            .unwrap_or(LOAD_STEPS[0])
    }
}

/// Send background requests at the rate the watch says, until the console's side is dropped.
async fn generate_load(engine: FailoverEngine, mut settings: watch::Receiver<LoadView>) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(LOAD_MAX_IN_FLIGHT));
    let mut n: usize = 0;
    loop {
        let view = *settings.borrow_and_update();
        if !view.on || view.per_sec <= 0.0 {
            if settings.changed().await.is_err() {
                return;
            }
            continue;
        }
        let pause = Duration::from_secs_f64(1.0 / view.per_sec.max(0.01));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            continue;
        };
        n += 1;
        let prompt = LOAD_PROMPTS[n % LOAD_PROMPTS.len()];
        let engine = engine.clone();
        tokio::spawn(async move {
            let request = Request {
                max_tokens: 120,
                ..Request::prompt(prompt)
            };
            let meta = RequestMeta {
                prompt: Some(prompt.to_string()),
                ..RequestMeta::new(Source::Load)
            };
            let (_, mut stream) = engine.send(request, meta);
            while stream.next().await.is_some() {}
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_rates_step_through_the_table_and_stop_at_its_ends() {
        assert_eq!(step(1.0, true), 2.0);
        assert_eq!(step(1.0, false), 0.5);
        assert_eq!(step(0.2, false), 0.2);
        assert_eq!(step(100.0, true), 100.0);
        assert_eq!(
            (step(3.0, true), step(3.0, false)),
            (5.0, 2.0),
            "off the table: the neighbours"
        );
    }
}
