//! The control plane: the [`Controller`] carries out the operator's [`Command`]s, whoever sent them
//! (the console's keys, the gateway's `/control`): trip, force or reset a breaker, set a simulated
//! fault, send a prompt, drive the background load. Its effects come back as events
//! (`operator_action`, `breaker_changed`, `request_started`, …), so they are shown, recorded and
//! replayed like everything else.

use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::command::{Command, LoadChange};
use crate::engine::failover::{FailoverEngine, RequestMeta};
use crate::event::{EventKind, OperatorAction, Source};
use crate::provider::Request;
use crate::sim::{Fault, Simulator};

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

/// Background traffic, as the operator set it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadView {
    pub on: bool,
    pub per_sec: f64,
}

/// Carries the operator's commands to the engine's breakers, the simulator and the load.
pub struct Controller {
    /// Prompts and the background load go through it; its breakers are every provider's.
    engine: FailoverEngine,
    /// The providers commands may name.
    providers: Vec<String>,
    sim: Option<Arc<Simulator>>,
    load: Option<watch::Sender<LoadView>>,
}

impl Controller {
    /// `providers` are the names commands may use (every configured provider).
    pub fn new(
        engine: FailoverEngine,
        providers: Vec<String>,
        sim: Option<Arc<Simulator>>,
    ) -> Self {
        Controller {
            engine,
            providers,
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

    /// Whether faults can be set (the providers are simulated).
    pub fn simulated(&self) -> bool {
        self.sim.is_some()
    }

    /// Carry out `command`. `Ok` is a line for the status bar; `Err` says why it was refused.
    pub fn apply(&self, command: Command) -> Result<String, String> {
        if let Some(provider) = command.provider() {
            self.known(provider)?;
        }
        match command {
            Command::Trip { provider } => Ok(self.breaker(OperatorAction::Trip, &provider)),
            Command::ForceClosed { provider } => {
                Ok(self.breaker(OperatorAction::ForceClosed, &provider))
            }
            Command::Reset { provider } => Ok(self.breaker(OperatorAction::Reset, &provider)),
            Command::SetFault { provider, fault } => self.set_fault(&provider, &fault),
            Command::Prompt { text } => {
                let text = text.trim();
                if text.is_empty() {
                    return Err("the prompt is empty".to_string());
                }
                self.prompter().send_prompt(text);
                Ok("prompt sent".to_string())
            }
            Command::Load { change } => self.adjust_load(change),
        }
    }

    fn known(&self, provider: &str) -> Result<(), String> {
        if self.providers.iter().any(|p| p == provider) {
            Ok(())
        } else {
            Err(format!(
                "no provider is named `{provider}` (there are: {})",
                self.providers.join(", ")
            ))
        }
    }

    /// Trip, force closed or reset every breaker of a provider.
    fn breaker(&self, action: OperatorAction, provider: &str) -> String {
        let shared = self.engine.shared();
        let (changed, effect) = match action {
            OperatorAction::Trip => (shared.breakers.force_open(provider), "trip (force open)"),
            OperatorAction::ForceClosed => (shared.breakers.force_closed(provider), "force closed"),
            // A reset forgets what the provider's rate limits said too.
            _ => {
                let breakers = shared.breakers.reset(provider);
                let throttle = shared.throttle.forget(provider);
                (breakers || throttle, "reset to automatic")
            }
        };
        shared.bus.publish(EventKind::OperatorAction {
            action,
            provider: Some(provider.to_string()),
            detail: if changed {
                String::new()
            } else {
                "no change".to_string()
            },
            instance: None,
        });
        if changed {
            format!("{provider}: {effect}")
        } else {
            format!("{provider}: already so")
        }
    }

    /// Set a simulated provider's fault.
    fn set_fault(&self, provider: &str, fault: &str) -> Result<String, String> {
        let Some(sim) = &self.sim else {
            return Err("faults apply to simulated providers: start with --demo".to_string());
        };
        let parsed = fault
            .parse::<Fault>()
            .map_err(|e| format!("fault `{fault}`: {e}"))?;
        sim.set_fault(provider, parsed).map_err(|e| e.to_string())?;
        self.engine.shared().bus.publish(EventKind::OperatorAction {
            action: OperatorAction::SetFault,
            provider: Some(provider.to_string()),
            detail: fault.to_string(),
            instance: None,
        });
        Ok(format!("{provider}: fault {fault}"))
    }

    /// A handle that sends prompts, for tasks of their own (re-driving a recording).
    pub fn prompter(&self) -> Prompter {
        Prompter {
            engine: self.engine.clone(),
        }
    }

    /// Turn the background load on or off, or step its rate.
    fn adjust_load(&self, change: LoadChange) -> Result<String, String> {
        let Some(tx) = &self.load else {
            return Err("no background load here".to_string());
        };
        let mut view = *tx.borrow();
        match change {
            LoadChange::Toggle => view.on = !view.on,
            LoadChange::Faster => view.per_sec = step(view.per_sec, true),
            LoadChange::Slower => view.per_sec = step(view.per_sec, false),
        }
        tx.send_replace(view);
        let rate = rate(view.per_sec);
        // Off, the rate is what it comes back at, not what is being sent.
        let detail = if view.on {
            format!("on, {rate}")
        } else {
            format!("off (back at {rate} when on)")
        };
        self.engine.shared().bus.publish(EventKind::OperatorAction {
            action: OperatorAction::Load,
            provider: None,
            detail: detail.clone(),
            instance: None,
        });
        Ok(format!("background load {detail}"))
    }
}

/// `1 request/s`, `0.5 requests/s`, `20 requests/s`.
fn rate(per_sec: f64) -> String {
    let unit = if per_sec == 1.0 {
        "request"
    } else {
        "requests"
    };
    format!("{per_sec} {unit}/s")
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
    fn a_rate_of_one_is_one_request() {
        assert_eq!(rate(1.0), "1 request/s");
        assert_eq!(rate(0.5), "0.5 requests/s");
        assert_eq!(rate(20.0), "20 requests/s");
    }

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
