//! Helpers for `status.conditions` (`metav1.Condition` lists), behaving like Cluster API's
//! `util/conditions.Set`: `lastTransitionTime` only moves when the status flips, times are
//! truncated to seconds (what survives a round trip through the API server), and the list
//! keeps Cluster API's order (Available, Ready first; Deleting, Paused last; the rest by type).

use crate::consts::condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(b: bool) -> Self {
        if b {
            Status::True
        } else {
            Status::False
        }
    }
}

/// The part of a condition a controller decides; the rest (times, generation) is filled in by [`set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCondition {
    pub type_: String,
    pub status: Status,
    pub reason: String,
    pub message: String,
}

impl NewCondition {
    pub fn new(type_: &str, status: Status, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    pub fn true_(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, Status::True, reason, message)
    }

    pub fn false_(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, Status::False, reason, message)
    }

    pub fn unknown(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Self::new(type_, Status::Unknown, reason, message)
    }
}

/// The current time truncated to whole seconds, as the API server stores it.
pub fn now() -> Time {
    truncate(Timestamp::now())
}

fn truncate(ts: Timestamp) -> Time {
    // `from_second` only fails outside jiff's range, which a truncated valid timestamp never is.
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

/// The condition of the given type.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type exists and is True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == Status::True.as_str())
}

/// Whether the condition of the given type exists and is False.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == Status::False.as_str())
}

/// Sets a condition at time `at`. Keeps the old `lastTransitionTime` when the status is
/// unchanged. Returns whether anything changed.
pub fn set_at(
    conditions: &mut Vec<Condition>,
    new: NewCondition,
    observed_generation: Option<i64>,
    at: Time,
) -> bool {
    let status = new.status.as_str();
    let changed = match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let changed = existing.status != status
                || existing.reason != new.reason
                || existing.message != new.message
                || existing.observed_generation != observed_generation;
            if existing.status != status {
                existing.last_transition_time = truncate(at.0);
            }
            existing.status = status.to_string();
            existing.reason = new.reason;
            existing.message = new.message;
            existing.observed_generation = observed_generation;
            changed
        }
        None => {
            conditions.push(Condition {
                type_: new.type_,
                status: status.to_string(),
                reason: new.reason,
                message: new.message,
                observed_generation,
                last_transition_time: truncate(at.0),
            });
            true
        }
    };
    sort(conditions);
    changed
}

/// [`set_at`] now.
pub fn set(
    conditions: &mut Vec<Condition>,
    new: NewCondition,
    observed_generation: Option<i64>,
) -> bool {
    set_at(conditions, new, observed_generation, now())
}

/// Removes the condition of the given type; returns whether it was there.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

fn rank(type_: &str) -> u8 {
    match type_ {
        condition::AVAILABLE => 0,
        condition::READY => 1,
        condition::DELETING => 3,
        condition::PAUSED => 4,
        _ => 2,
    }
}

/// Puts conditions in Cluster API's order (stable, so equal ranks keep type order).
pub fn sort(conditions: &mut [Condition]) {
    conditions.sort_by(|a, b| {
        rank(&a.type_)
            .cmp(&rank(&b.type_))
            .then_with(|| a.type_.cmp(&b.type_))
    });
}

/// Objects that carry a v1beta2 conditions list.
pub trait HasConditions {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// `metadata.generation`, recorded as each condition's `observedGeneration`.
    fn generation(&self) -> Option<i64>;

    /// Sets a condition now (see [`set_at`]); returns whether anything changed.
    fn set_condition(&mut self, new: NewCondition) -> bool {
        let generation = self.generation();
        set(self.conditions_mut(), new, generation)
    }

    fn get_condition(&self, type_: &str) -> Option<&Condition> {
        get(self.conditions(), type_)
    }

    fn is_condition_true(&self, type_: &str) -> bool {
        is_true(self.conditions(), type_)
    }

    fn remove_condition(&mut self, type_: &str) -> bool {
        remove(self.conditions_mut(), type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{condition, reason};

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    #[test]
    fn keeps_transition_time_when_status_unchanged() {
        let mut c = Vec::new();
        set_at(
            &mut c,
            NewCondition::false_(condition::READY, reason::NOT_READY, "waiting"),
            Some(1),
            at(100),
        );
        let changed = set_at(
            &mut c,
            NewCondition::false_(condition::READY, reason::NOT_READY, "still waiting"),
            Some(2),
            at(200),
        );
        assert!(changed);
        let ready = get(&c, condition::READY).unwrap();
        assert_eq!(ready.last_transition_time, at(100));
        assert_eq!(ready.message, "still waiting");
        assert_eq!(ready.observed_generation, Some(2));
    }

    #[test]
    fn moves_transition_time_when_status_flips() {
        let mut c = Vec::new();
        set_at(
            &mut c,
            NewCondition::false_(condition::READY, reason::NOT_READY, ""),
            None,
            at(100),
        );
        set_at(
            &mut c,
            NewCondition::true_(condition::READY, reason::READY, ""),
            None,
            at(300),
        );
        let ready = get(&c, condition::READY).unwrap();
        assert_eq!(ready.last_transition_time, at(300));
        assert!(is_true(&c, condition::READY));
        assert!(!is_false(&c, condition::READY));
    }

    #[test]
    fn reports_no_change_for_identical_condition() {
        let mut c = Vec::new();
        let cond = NewCondition::true_(condition::PAUSED, reason::PAUSED, "");
        assert!(set_at(&mut c, cond.clone(), Some(1), at(1)));
        assert!(!set_at(&mut c, cond, Some(1), at(2)));
        assert_eq!(
            get(&c, condition::PAUSED).unwrap().last_transition_time,
            at(1)
        );
    }

    #[test]
    fn truncates_to_seconds() {
        let mut c = Vec::new();
        let precise = Time(Timestamp::new(100, 999_000_000).unwrap());
        set_at(
            &mut c,
            NewCondition::true_(condition::READY, reason::READY, ""),
            None,
            precise,
        );
        assert_eq!(
            get(&c, condition::READY).unwrap().last_transition_time,
            at(100)
        );
    }

    #[test]
    fn orders_like_cluster_api() {
        let mut c = Vec::new();
        for t in [
            condition::PAUSED,
            condition::LOAD_BALANCER_AVAILABLE,
            condition::DELETING,
            condition::READY,
            condition::BOOTSTRAP_COMPLETED,
        ] {
            set_at(&mut c, NewCondition::true_(t, "R", ""), None, at(1));
        }
        let types: Vec<_> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                condition::READY,
                condition::BOOTSTRAP_COMPLETED,
                condition::LOAD_BALANCER_AVAILABLE,
                condition::DELETING,
                condition::PAUSED
            ]
        );
    }

    #[test]
    fn removes_by_type() {
        let mut c = Vec::new();
        set_at(
            &mut c,
            NewCondition::unknown(condition::READY, reason::READY_UNKNOWN, ""),
            None,
            at(1),
        );
        assert!(remove(&mut c, condition::READY));
        assert!(!remove(&mut c, condition::READY));
        assert!(c.is_empty());
    }
}
