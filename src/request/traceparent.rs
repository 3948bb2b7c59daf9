//! The W3C Trace Context `traceparent` header a caller may send, read into the trace
//! id that the decision's audit event and minted token carry.

/// The trace id of a W3C `traceparent` (version-traceid-parentid-flags), if valid.
pub fn trace_id(traceparent: Option<&str>) -> Option<String> {
    let mut parts = traceparent?.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = hex(version, 2) && version != "ff" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2);
    (valid && trace.bytes().any(|b| b != b'0')).then(|| trace.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(trace_id(Some(tp)).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(
            trace_id(Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")),
            None
        );
        assert_eq!(
            trace_id(Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")),
            None
        );
        assert_eq!(trace_id(Some("garbage")), None);
        assert_eq!(trace_id(None), None);
    }
}
