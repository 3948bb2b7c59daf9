//! Proof of possession at a resource (RFC 9449 §7): a token bound to a key
//! (`cnf.jkt`) is accepted only as `Authorization: DPoP <token>` with a `DPoP` proof
//! read by the one pipeline ([`mcp_sts_contract::jose::dpop`]), made by that key, for this
//! request's method and URL (the service's configured public URL, normalised), carrying
//! the token's hash (`ath`), within ±60 s, and never seen before by this service (a
//! replay memory holding each proof until its `iat` leaves the window). A bound token
//! sent as `Bearer` is refused, and so is an unbound token sent as `DPoP`. The verifier
//! and the MCP kit share this check.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::hmac;

use serde_json::{Map, Value};

use super::error::VerifyError;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::algorithm::asymmetric_names;
use mcp_sts_contract::jose::dpop::{ProofError, read_proof};
use mcp_sts_contract::jose::nonce;

/// The default number of proofs remembered: a window's worth at about 1,500 requests
/// per second with a bound token.
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// How a token was presented in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1).
    Dpop,
}

/// The request a token arrived with: what the proof must have been made for.
#[derive(Debug, Clone, Copy)]
pub struct Presentation<'a> {
    /// The `Authorization` scheme.
    pub scheme: Scheme,
    /// The `DPoP` header, when present (and only one).
    pub proof: Option<&'a str>,
    /// The HTTP method.
    pub method: &'a str,
    /// The request's URL as this service is reached from outside.
    pub url: &'a str,
}

/// The `algs` parameter of a `DPoP` challenge: the one asymmetric list.
pub fn challenge_algs() -> String {
    asymmetric_names().collect::<Vec<_>>().join(" ")
}

/// The DPoP key a token's claims bind it to, if any; a `cnf` that binds otherwise
/// cannot be proven here and is refused.
pub fn bound_key(claims: &Map<String, Value>) -> Result<Option<&str>, VerifyError> {
    match claims.get("cnf") {
        None => Ok(None),
        Some(cnf) => cnf
            .get("jkt")
            .and_then(Value::as_str)
            .filter(|jkt| !jkt.is_empty())
            .map(Some)
            .ok_or_else(|| VerifyError::Malformed("the token is bound by a cnf other than jkt".into())),
    }
}

/// The proofs seen within the window, so each is accepted once; and, when configured,
/// the key of the server nonces proofs must carry.
pub struct ProofChecker {
    seen: Mutex<HashMap<String, UnixTime>>,
    capacity: usize,
    nonces: Option<hmac::Key>,
}

impl std::fmt::Debug for ProofChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofChecker")
            .field("capacity", &self.capacity)
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

impl ProofChecker {
    /// A checker remembering up to `capacity` proofs at once.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            nonces: None,
        }
    }

    /// Demand server nonces (RFC 9449 §9) made with `secret`: replicas of one service
    /// share it, so a nonce one gave is good at the others.
    pub fn with_nonces(mut self, secret: &[u8]) -> Self {
        self.nonces = Some(nonce::key(secret));
        self
    }

    /// Check how `token`, bound to `jkt` (or not), was presented.
    pub async fn check(
        &self,
        token: &str,
        jkt: Option<&str>,
        presented: Presentation<'_>,
        now: UnixTime,
    ) -> Result<(), VerifyError> {
        let jkt = match (jkt, presented.scheme) {
            (None, Scheme::Bearer) => return Ok(()),
            (None, Scheme::Dpop) => return Err(VerifyError::NotBound),
            (Some(_), Scheme::Bearer) => return Err(VerifyError::BoundToKey),
            (Some(jkt), Scheme::Dpop) => jkt,
        };
        let proof = presented
            .proof
            .ok_or_else(|| VerifyError::InvalidProof("no DPoP proof".into()))?;
        let proof = read_proof(proof, now).await.map_err(invalid)?;
        proof.check_key(jkt).map_err(invalid)?;
        proof.check_request(presented.method, presented.url).map_err(invalid)?;
        proof.check_token(token).map_err(invalid)?;
        if let Some(key) = &self.nonces
            && !proof
                .nonce
                .as_deref()
                .is_some_and(|presented| nonce::is_current([key], presented, now))
        {
            return Err(VerifyError::UseDpopNonce(nonce::issue(key, now)));
        }
        self.first_use(proof.marker(), proof.remember_until(), now)
    }

    /// Remember a proof until `until`; refused when seen before.
    fn first_use(&self, marker: String, until: UnixTime, now: UnixTime) -> Result<(), VerifyError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.get(&marker).is_some_and(|kept| *kept > now) {
            return Err(VerifyError::InvalidProof("the DPoP proof has already been used".into()));
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, kept| *kept > now);
            // Every remembered proof is still in its window: forgetting one would let it
            // be replayed, so refuse until room is made (fail closed).
            if seen.len() >= self.capacity {
                return Err(VerifyError::ReplayMemoryFull);
            }
        }
        seen.insert(marker, until);
        Ok(())
    }
}

fn invalid(error: ProofError) -> VerifyError {
    VerifyError::InvalidProof(super::error::printable_text(&error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::DpopKey;

    const NOW: UnixTime = 1_900_000_000;
    const URL: &str = "https://api.example.com/orders";

    fn presented(proof: &str) -> Presentation<'_> {
        Presentation {
            scheme: Scheme::Dpop,
            proof: Some(proof),
            method: "GET",
            url: URL,
        }
    }

    #[tokio::test]
    async fn each_proof_is_accepted_once_and_a_full_memory_fails_closed() {
        let key = DpopKey::generate().unwrap();
        let jkt = key.thumbprint().to_owned();
        let checker = ProofChecker::new(1);
        let first = key.proof("GET", URL, NOW, Some("tok"), None).unwrap();
        assert_eq!(checker.check("tok", Some(&jkt), presented(&first), NOW).await, Ok(()));
        assert!(matches!(
            checker.check("tok", Some(&jkt), presented(&first), NOW).await,
            Err(VerifyError::InvalidProof(_))
        ));
        // Full of a proof still in its window: a new proof waits rather than evict it.
        let second = key.proof("GET", URL, NOW, Some("tok"), None).unwrap();
        assert_eq!(
            checker.check("tok", Some(&jkt), presented(&second), NOW).await,
            Err(VerifyError::ReplayMemoryFull)
        );
        // Once the first proof's window has passed, its place is free.
        let later = NOW + 2 * mcp_sts_contract::jose::dpop::IAT_WINDOW;
        let third = key.proof("GET", URL, later, Some("tok"), None).unwrap();
        assert_eq!(checker.check("tok", Some(&jkt), presented(&third), later).await, Ok(()));
    }

    #[tokio::test]
    async fn nonces_when_configured() {
        let key = DpopKey::generate().unwrap();
        let jkt = key.thumbprint().to_owned();
        let checker = ProofChecker::new(10).with_nonces(b"resource secret");
        let without = key.proof("GET", URL, NOW, Some("tok"), None).unwrap();
        let Err(VerifyError::UseDpopNonce(nonce)) = checker.check("tok", Some(&jkt), presented(&without), NOW).await
        else {
            panic!("a proof without a nonce was accepted");
        };
        let with = key.proof("GET", URL, NOW, Some("tok"), Some(&nonce)).unwrap();
        assert_eq!(checker.check("tok", Some(&jkt), presented(&with), NOW).await, Ok(()));
        let later = NOW + 3 * mcp_sts_contract::jose::nonce::WINDOW_SECONDS;
        let stale = key.proof("GET", URL, later, Some("tok"), Some(&nonce)).unwrap();
        assert!(matches!(
            checker.check("tok", Some(&jkt), presented(&stale), later).await,
            Err(VerifyError::UseDpopNonce(_))
        ));
    }

    #[tokio::test]
    async fn the_scheme_must_match_the_binding() {
        let checker = ProofChecker::new(10);
        let bearer = Presentation {
            scheme: Scheme::Bearer,
            proof: None,
            method: "GET",
            url: URL,
        };
        assert_eq!(checker.check("tok", None, bearer, NOW).await, Ok(()));
        assert_eq!(
            checker.check("tok", Some("jkt"), bearer, NOW).await,
            Err(VerifyError::BoundToKey)
        );
        let dpop = Presentation {
            scheme: Scheme::Dpop,
            ..bearer
        };
        assert_eq!(checker.check("tok", None, dpop, NOW).await, Err(VerifyError::NotBound));
        assert!(matches!(
            checker.check("tok", Some("jkt"), dpop, NOW).await,
            Err(VerifyError::InvalidProof(_))
        ));
    }
}
