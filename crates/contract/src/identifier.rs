//! One rule for every identifier that can be revoked: users, agents, clients, sessions
//! and token ids.
//!
//! The exchange refuses a token whose identifiers break the rule, and the admin API
//! refuses to revoke a value that breaks it, so anything the exchange accepts can be
//! revoked and nothing is minted unrevocable.

use std::fmt;

/// Longest identifier accepted, in bytes of UTF-8.
pub const MAX_IDENTIFIER_BYTES: usize = 1024;

/// Why a value is not an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Empty, or only white space.
    #[error("is empty or blank")]
    Blank,
    /// Longer than [`MAX_IDENTIFIER_BYTES`].
    #[error("is longer than 1024 bytes")]
    TooLong,
    /// Contains a control character (including newlines and tabs).
    #[error("contains a control character")]
    ControlCharacter,
}

/// A user, agent, client, session or token id: 1 to 1024 bytes of UTF-8, not blank,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(String);

impl Identifier {
    /// Check `value` against the rule.
    pub fn parse(value: &str) -> Result<Self, IdentifierError> {
        check(value)?;
        Ok(Self(value.to_owned()))
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Check `value` against the identifier rule without keeping it.
pub fn check(value: &str) -> Result<(), IdentifierError> {
    if value.len() > MAX_IDENTIFIER_BYTES {
        return Err(IdentifierError::TooLong);
    }
    if value.chars().any(char::is_control) {
        return Err(IdentifierError::ControlCharacter);
    }
    if value.trim().is_empty() {
        return Err(IdentifierError::Blank);
    }
    Ok(())
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Identifier {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Cut a value taken from an untrusted peer (a token's `kid`, a SET's `jti`) to
/// something safe to print: at most 64 characters from a conservative set, so it can
/// never break a header or a log line.
pub fn printable(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.:+/@=".contains(*c))
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_in_named_cases() {
        let cases: [(&str, String, Result<(), IdentifierError>); 9] = [
            ("email", "alice@example.com".into(), Ok(())),
            ("spaces inside", "Finance Admin".into(), Ok(())),
            ("unicode", "zoë@example.com".into(), Ok(())),
            ("exactly 1024 bytes", "a".repeat(1024), Ok(())),
            ("empty", String::new(), Err(IdentifierError::Blank)),
            ("blank", " \u{3000} ".into(), Err(IdentifierError::Blank)),
            ("1025 bytes", "a".repeat(1025), Err(IdentifierError::TooLong)),
            ("newline", "alice\nbob".into(), Err(IdentifierError::ControlCharacter)),
            ("nul", "alice\0".into(), Err(IdentifierError::ControlCharacter)),
        ];
        let failed: Vec<&str> = cases
            .iter()
            .filter(|(_, value, expected)| check(value) != *expected)
            .map(|(name, _, _)| *name)
            .collect();
        assert!(failed.is_empty(), "failed cases: {failed:?}");
    }
}
