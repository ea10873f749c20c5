//! A console over a fleet of gateways (`breakerbox attach URL URL …`). The merged dashboard folds
//! every member's events (stamped with the member's name, their request ids prefixed with it, so
//! `gw-a/r12` and `gw-b/r12` stay two requests): latencies, rates, errors and costs add up there.
//! A breaker is one member's, though, so each member also has a dashboard of its own, and the
//! merged row of a provider shows the most severe of the members' breakers and how many members
//! are in that state (`open 2/3`), its failures in a row those of the member closest to
//! tripping. The detail view lists each member's part.

use super::providers::severity;
use super::{Dashboard, log};
use crate::event::{BreakerState, Event, EventKind};

/// Members a fleet console keeps.
pub const MEMBERS_KEPT: usize = 64;

/// Whether a member's event stream is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberLink {
    /// Not heard from yet.
    Connecting,
    Up,
    /// Gone, or never answered: why, in a few words, and when the next try is (milliseconds
    /// after it went).
    Down {
        why: String,
        retry_in_ms: u64,
    },
}

impl MemberLink {
    pub fn is_up(&self) -> bool {
        *self == MemberLink::Up
    }
}

/// One gateway of the fleet.
#[derive(Debug, Clone)]
pub struct Member {
    /// `NAME` as given (`NAME=URL`), else the gateway's `host:port`.
    pub name: String,
    pub link: MemberLink,
    /// This member's events alone.
    pub dash: Dashboard,
}

/// The members, in the order they were given.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub members: Vec<Member>,
}

/// A provider's breaker across the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetBreaker {
    /// The most severe state of the members' ([`severity`]).
    pub state: BreakerState,
    /// How many members are in it, of `of`: the members connected that know the provider (all
    /// that know it, as last heard, when none is connected).
    pub in_state: usize,
    pub of: usize,
}

impl Fleet {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Fleet {
            members: names
                .into_iter()
                .take(MEMBERS_KEPT)
                .map(|name| Member {
                    name,
                    link: MemberLink::Connecting,
                    dash: Dashboard::new(),
                })
                .collect(),
        }
    }

    /// Members whose stream is up.
    pub fn up(&self) -> usize {
        self.members.iter().filter(|m| m.link.is_up()).count()
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The members a provider's merged state is made of: those connected, or, when none is, all
    /// of them (what they last said).
    fn counted(&self) -> impl Iterator<Item = &Member> {
        let any_up = self.up() > 0;
        self.members
            .iter()
            .filter(move |m| !any_up || m.link.is_up())
    }

    /// The provider's breaker across the counted members that know it; `None` if none does.
    pub fn breaker(&self, provider: &str) -> Option<FleetBreaker> {
        let states: Vec<BreakerState> = self
            .counted()
            .filter_map(|m| m.dash.provider(provider))
            .map(|p| p.breaker)
            .collect();
        let state = states.iter().copied().max_by_key(|s| severity(*s))?;
        Some(FleetBreaker {
            state,
            in_state: states.iter().filter(|s| **s == state).count(),
            of: states.len(),
        })
    }

    /// Set a member's link; false if there is no such member.
    pub fn set_link(&mut self, index: usize, link: MemberLink) -> bool {
        let Some(member) = self.members.get_mut(index) else {
            return false;
        };
        match link {
            MemberLink::Down { .. } => member.dash.hold_clock(),
            _ => member.dash.release_clock(),
        }
        member.link = link;
        true
    }
}

impl Dashboard {
    /// A dashboard over a fleet of the members named.
    pub fn over_gateways(names: impl IntoIterator<Item = String>) -> Self {
        Dashboard {
            gateways: Some(Box::new(Fleet::new(names))),
            ..Dashboard::new()
        }
    }

    /// Fold an event of a member into that member's own dashboard (first, so that the merged
    /// row can take its breaker from it). A member's new `session_started` (its gateway started
    /// again) starts its own dashboard afresh; what it did before stays in the merged one.
    pub(super) fn fold_member(&mut self, event: &Event) {
        let Some(fleet) = self.gateways.as_deref_mut() else {
            return;
        };
        let Some(name) = event.gateway.as_deref() else {
            return;
        };
        let Some(member) = fleet.members.iter_mut().find(|m| m.name == name) else {
            return;
        };
        if member.dash.events_applied > 0 && matches!(event.kind, EventKind::SessionStarted { .. })
        {
            member.dash = Dashboard::new();
        }
        member.dash.apply(event);
    }

    /// After an event: the merged rows of what it is about take their breaker from the members.
    pub(super) fn sync_after(&mut self, event: &Event) {
        if self.gateways.is_none() {
            return;
        }
        match log::event_provider(&event.kind) {
            Some(provider) if !matches!(event.kind, EventKind::SessionStarted { .. }) => {
                let provider = provider.to_string();
                self.sync_provider(&provider);
            }
            _ => self.sync_fleet(),
        }
    }

    /// Every merged row takes its breaker from the members (after a member came or went).
    pub fn sync_fleet(&mut self) {
        let names: Vec<String> = self.providers.iter().map(|p| p.name.clone()).collect();
        for name in names {
            self.sync_provider(&name);
        }
    }

    /// The merged row of `provider`: the breaker of its most severe member (state, since,
    /// countdown, reason, per-model breakers), the most failures in a row, every member's probes.
    fn sync_provider(&mut self, provider: &str) {
        let Some(fleet) = self.gateways.as_deref() else {
            return;
        };
        let Some(view) = self.providers.iter_mut().find(|p| p.name == provider) else {
            return;
        };
        let members: Vec<(&str, &super::ProviderView)> = fleet
            .counted()
            .filter_map(|m| m.dash.provider(provider).map(|p| (m.name.as_str(), p)))
            .collect();
        // The first of the most severe (`max_by_key` would give the last).
        let Some((name, worst)) = members
            .iter()
            .rev()
            .copied()
            .max_by_key(|(_, p)| severity(p.breaker))
        else {
            return;
        };
        view.breaker = worst.breaker;
        view.breaker_since = worst.breaker_since;
        view.open_until = worst.open_until;
        view.breaker_reason = if worst.breaker_reason.is_empty() {
            String::new()
        } else {
            format!("{name}: {}", worst.breaker_reason)
        };
        view.models.clone_from(&worst.models);
        view.consecutive_failures = members
            .iter()
            .map(|(_, p)| p.consecutive_failures)
            .max()
            .unwrap_or(0);
        view.probes_in_flight = members.iter().map(|(_, p)| p.probes_in_flight).sum();
        if let Some(threshold) = members.iter().find_map(|(_, p)| p.threshold) {
            view.threshold = Some(threshold);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::script::*;
    use super::*;

    fn stamped(script: &Script, instance: &str, prefix: bool) -> Vec<Event> {
        script
            .0
            .iter()
            .map(|e| {
                let mut json = serde_json::to_value(e).expect("json");
                if prefix && let Some(id) = json["request_id"].as_str() {
                    json["request_id"] = format!("{instance}/{id}").into();
                }
                json["gateway"] = instance.into();
                serde_json::from_value(json).expect("an event")
            })
            .collect()
    }

    #[test]
    fn a_provider_shows_its_most_severe_member_and_how_many_are_in_it() {
        let mut dash = Dashboard::over_gateways(["a".to_string(), "b".into(), "c".into()]);
        let mut opened = Script::default();
        opened.at(0, session(&["anthropic", "openai"], Some(5))).at(
            10,
            breaker("anthropic", "closed", "open", "5 failures", Some(30_000)),
        );
        let mut quiet = Script::default();
        quiet.at(0, session(&["anthropic", "openai"], Some(5)));
        let mut events = stamped(&opened, "a", true);
        events.extend(stamped(&quiet, "b", true));
        events.extend(stamped(&opened, "c", true));
        for (i, e) in events.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        for e in &events {
            dash.apply(e);
        }
        for i in 0..3 {
            dash.gateways
                .as_deref_mut()
                .unwrap()
                .set_link(i, MemberLink::Up);
        }
        dash.sync_fleet();
        let fleet = dash.gateways.as_deref().unwrap();
        assert_eq!(
            fleet.breaker("anthropic"),
            Some(FleetBreaker {
                state: BreakerState::Open,
                in_state: 2,
                of: 3
            })
        );
        assert_eq!(
            fleet.breaker("openai").map(|b| (b.state, b.in_state)),
            Some((BreakerState::Closed, 3))
        );
        let row = dash.provider("anthropic").unwrap();
        assert_eq!(row.breaker, BreakerState::Open);
        assert_eq!(row.breaker_reason, "a: 5 failures");
        assert_eq!(
            fleet
                .member("b")
                .unwrap()
                .dash
                .provider("anthropic")
                .unwrap()
                .breaker,
            BreakerState::Closed
        );

        // A member that went away no longer counts; when none is left, what they last said.
        let fleet = dash.gateways.as_deref_mut().unwrap();
        for i in [0, 2] {
            fleet.set_link(
                i,
                MemberLink::Down {
                    why: "gone".into(),
                    retry_in_ms: 250,
                },
            );
        }
        dash.sync_fleet();
        assert_eq!(
            dash.provider("anthropic").unwrap().breaker,
            BreakerState::Closed
        );
        let fleet = dash.gateways.as_deref_mut().unwrap();
        fleet.set_link(
            1,
            MemberLink::Down {
                why: "gone".into(),
                retry_in_ms: 250,
            },
        );
        assert_eq!(
            fleet.breaker("anthropic").map(|b| (b.in_state, b.of)),
            Some((2, 3))
        );
    }
}
