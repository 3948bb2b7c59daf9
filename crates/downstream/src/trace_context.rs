//! W3C Trace Context on the downstream side: continuing a trace needs only its ids,
//! so the verifier and the kit propagate `traceparent` without an OpenTelemetry SDK.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Whether `value` is a W3C trace id: 32 lowercase hex digits, not all zero.
pub fn is_trace_id(value: &str) -> bool {
    value.len() == 32
        && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && value.bytes().any(|b| b != b'0')
}

/// A sampled `traceparent` in the trace `trace_id` with a fresh random span id; `None`
/// when `trace_id` is not a trace id or no randomness is to be had.
pub fn child_of(trace_id: &str) -> Option<String> {
    if !is_trace_id(trace_id) {
        return None;
    }
    let mut span = [0u8; 8];
    SystemRandom::new().fill(&mut span).ok()?;
    if span == [0u8; 8] {
        return None;
    }
    let span: String = span.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("00-{trace_id}-{span}-01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_and_gets_its_own_span() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let first = child_of(trace).unwrap();
        let second = child_of(trace).unwrap();
        assert!(
            first.starts_with(&format!("00-{trace}-")) && first.ends_with("-01"),
            "{first}"
        );
        assert_eq!(first.len(), 55);
        assert_ne!(first, second, "each child has its own span id");
        for not_a_trace in [
            "",
            "00000000000000000000000000000000",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "txn-1",
        ] {
            assert_eq!(child_of(not_a_trace), None, "{not_a_trace}");
        }
    }
}
