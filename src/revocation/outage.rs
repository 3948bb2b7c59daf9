//! The operational log of a store outage: one WARN when calls start failing, naming
//! the cause in the backend's words; one more when the failure changes; one INFO
//! when the store answers again. Each change says how many calls failed in the state
//! it leaves, so a minute of outage is three lines, not one per refused request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Failures since the last change of state, shared by every clone of the gate.
#[derive(Debug, Default)]
pub struct OutageLog {
    /// Fast path: calls that succeed while nothing is failing take no lock.
    failing: AtomicBool,
    state: Mutex<Failing>,
}

#[derive(Debug, Default)]
struct Failing {
    /// How calls fail now (the error's text), `None` while they succeed.
    error: Option<String>,
    /// Calls failed in this state.
    calls: u64,
    /// Calls failed since the outage began.
    total: u64,
}

/// A change the log reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Calls started failing, or now fail differently: how many failed the old way.
    Failing {
        /// Calls that failed in the previous failing state (0 when it was healthy).
        earlier_failures: u64,
    },
    /// The store answers again after this many failed calls.
    Recovered {
        /// Calls that failed during the outage.
        failed_calls: u64,
    },
}

impl OutageLog {
    /// A call failed with `error`: a change when it opens an outage or the failure is
    /// not the one seen so far.
    pub fn failed(&self, error: &str) -> Option<Change> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.failing.store(true, Ordering::Release);
        state.total = state.total.saturating_add(1);
        if state.error.as_deref() == Some(error) {
            state.calls = state.calls.saturating_add(1);
            return None;
        }
        let earlier_failures = if state.error.is_some() { state.calls } else { 0 };
        state.error = Some(error.to_owned());
        state.calls = 1;
        Some(Change::Failing { earlier_failures })
    }

    /// A call succeeded: a change when it ends an outage.
    pub fn answered(&self) -> Option<Change> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.failing.store(false, Ordering::Release);
        state.error.take()?;
        state.calls = 0;
        Some(Change::Recovered {
            failed_calls: std::mem::take(&mut state.total),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_change_per_state_with_the_count_of_the_state_left() {
        let log = OutageLog::default();
        assert_eq!(log.answered(), None);
        assert_eq!(log.failed("timed out"), Some(Change::Failing { earlier_failures: 0 }));
        assert_eq!(log.failed("timed out"), None);
        assert_eq!(log.failed("timed out"), None);
        assert_eq!(log.failed("refused"), Some(Change::Failing { earlier_failures: 3 }));
        assert_eq!(log.failed("refused"), None);
        assert_eq!(log.answered(), Some(Change::Recovered { failed_calls: 5 }));
        assert_eq!(log.answered(), None);
        assert_eq!(log.failed("refused"), Some(Change::Failing { earlier_failures: 0 }));
    }
}
