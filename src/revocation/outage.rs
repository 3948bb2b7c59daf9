//! The operational log of a store outage: one WARN when calls start failing, naming
//! the cause in the backend's words; one more for each other way of failing met during
//! the same outage (at most [`MAX_KINDS`]); one INFO when the store answers again,
//! with how many calls failed. A minute of outage is a few lines, not one per refused
//! request, even when failures alternate (a timeout, then a store that lost its data).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Ways of failing reported in one outage; past them failures are only counted.
const MAX_KINDS: usize = 8;

/// Failures since the store last answered, shared by every clone of the gate.
#[derive(Debug, Default)]
pub(crate) struct OutageLog {
    /// Fast path: calls that succeed while nothing is failing take no lock.
    failing: AtomicBool,
    state: Mutex<Outage>,
}

#[derive(Debug, Default)]
struct Outage {
    /// The errors reported in this outage (their text); empty while healthy.
    reported: Vec<String>,
    /// Calls failed since the outage began.
    failed_calls: u64,
}

/// A change the log reports.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Change {
    /// Calls started failing, or fail in a way not reported yet in this outage.
    Failing {
        /// Calls that failed earlier in this outage (0 when it just began).
        earlier_failures: u64,
    },
    /// The store answers again after this many failed calls.
    Recovered {
        /// Calls that failed during the outage.
        failed_calls: u64,
    },
}

impl OutageLog {
    /// A call failed with `error`: a change when it opens an outage or fails in a way
    /// this outage has not reported.
    pub(crate) fn failed(&self, error: &str) -> Option<Change> {
        let mut outage = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.failing.store(true, Ordering::Release);
        let earlier_failures = outage.failed_calls;
        outage.failed_calls = outage.failed_calls.saturating_add(1);
        if outage.reported.len() >= MAX_KINDS || outage.reported.iter().any(|e| e == error) {
            return None;
        }
        outage.reported.push(error.to_owned());
        Some(Change::Failing { earlier_failures })
    }

    /// A call succeeded: a change when it ends an outage.
    pub(crate) fn answered(&self) -> Option<Change> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        let mut outage = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.failing.store(false, Ordering::Release);
        if outage.reported.is_empty() {
            return None;
        }
        outage.reported.clear();
        Some(Change::Recovered {
            failed_calls: std::mem::take(&mut outage.failed_calls),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_way_of_failing_and_one_with_the_count_at_the_end() {
        let log = OutageLog::default();
        assert_eq!(log.answered(), None);
        assert_eq!(log.failed("timed out"), Some(Change::Failing { earlier_failures: 0 }));
        assert_eq!(log.failed("timed out"), None);
        assert_eq!(log.failed("timed out"), None);
        assert_eq!(log.failed("not trusted"), Some(Change::Failing { earlier_failures: 3 }));
        // Alternating between kinds already reported adds nothing.
        for _ in 0..10 {
            assert_eq!(log.failed("timed out"), None);
            assert_eq!(log.failed("not trusted"), None);
        }
        assert_eq!(log.answered(), Some(Change::Recovered { failed_calls: 24 }));
        assert_eq!(log.answered(), None);
        assert_eq!(log.failed("timed out"), Some(Change::Failing { earlier_failures: 0 }));
    }

    #[test]
    fn the_kinds_reported_in_one_outage_are_bounded() {
        let log = OutageLog::default();
        let reported = (0..20).filter(|i| log.failed(&format!("error {i}")).is_some()).count();
        assert_eq!(reported, MAX_KINDS);
        assert_eq!(log.answered(), Some(Change::Recovered { failed_calls: 20 }));
    }
}
