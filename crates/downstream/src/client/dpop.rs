//! The key a client proves possession of (RFC 9449): tokens mcp-sts mints for it are
//! bound to this key's thumbprint, and every request that carries such a token, to
//! mcp-sts or to the service it is for, carries a fresh proof signed by it. A key
//! generated per process is the default: a copied token is useless without it.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::error::StsError;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::dpop::{TYP, token_hash};

/// A P-256 key that signs DPoP proofs (ES256). `Debug` never shows the private key.
#[derive(Clone)]
pub struct DpopKey {
    key: EncodingKey,
    jwk: Jwk,
    jkt: String,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

/// The claims of one proof.
#[derive(serde::Serialize)]
struct ProofClaims<'a> {
    jti: String,
    htm: &'a str,
    htu: &'a str,
    iat: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

impl DpopKey {
    /// A fresh key, for this process only.
    pub fn generate() -> Result<Self, StsError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| StsError::InvalidInput("no randomness for a DPoP key".into()))?;
        let der = pair
            .to_pkcs8v1()
            .map_err(|_| StsError::InvalidInput("the DPoP key could not be encoded".into()))?;
        Self::from_pkcs8(der.as_ref())
    }

    /// A configured P-256 private key in PEM (PKCS#8), shared by the replicas of one
    /// service so a token one obtained may be used by another.
    pub fn from_pem(pem: &[u8]) -> Result<Self, StsError> {
        let parsed = pem::parse(pem).map_err(|_| not_p256())?;
        if parsed.tag() != "PRIVATE KEY" {
            return Err(not_p256());
        }
        let der = parsed.contents();
        Self::from_pkcs8(der)
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, StsError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|_| not_p256())?;
        let point = pair.public_key().as_ref();
        let (x, y) = match (point.get(1..33), point.get(33..65)) {
            (Some(x), Some(y)) if point.len() == 65 => (x, y),
            _ => return Err(not_p256()),
        };
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }))
        .map_err(|_| not_p256())?;
        let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| not_p256())?;
        Ok(Self {
            key: EncodingKey::from_ec_der(der),
            jwk,
            jkt,
        })
    }

    /// The key's RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to it.
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// The public key, as proofs carry it.
    pub fn public_jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// A fresh proof for `method` on `url` at `now`; with `access_token`, bound to it
    /// (`ath`); with `nonce`, carrying the server's nonce.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        now: UnixTime,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, StsError> {
        let mut id = [0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| StsError::InvalidInput("no randomness for the proof jti".into()))?;
        let claims = ProofClaims {
            jti: URL_SAFE_NO_PAD.encode(id),
            htm: method,
            htu: url,
            iat: now,
            ath: access_token.map(token_hash),
            nonce,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(TYP.into());
        header.jwk = Some(self.jwk.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| StsError::InvalidInput("the DPoP proof could not be signed".into()))
    }
}

fn not_p256() -> StsError {
    StsError::InvalidInput("the DPoP key is not a P-256 private key in PKCS#8 PEM".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_sts_contract::clock::UnixTime;
    use mcp_sts_contract::jose::dpop::read_proof;

    const NOW: UnixTime = 1_900_000_000;

    #[tokio::test]
    async fn the_client_key_makes_proofs_this_side_accepts() {
        let key = DpopKey::generate().unwrap();
        let token = key
            .proof("GET", "https://api.example.com/x", NOW, Some("tok"), Some("n-1"))
            .unwrap();
        let proof = read_proof(&token, NOW).await.unwrap();
        assert_eq!(proof.jkt, key.thumbprint());
        assert_eq!(proof.check_request("GET", "https://api.example.com/x"), Ok(()));
        assert_eq!(proof.check_token("tok"), Ok(()));
        assert_eq!(proof.nonce.as_deref(), Some("n-1"));
    }
}
