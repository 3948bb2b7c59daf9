//! DPoP at the token endpoint (RFC 9449) over real HTTP: a proof binds the minted
//! token to its key; every broken rule is `invalid_dpop_proof` (or `use_dpop_nonce`)
//! and mints nothing; per-client and per-audience policy; replay and nonces across
//! replicas sharing a real Redis.

use crate::support::attack::{Watch, b64, form, hmac_token, post_raw};
use crate::support::redis_server::RedisServer;
use crate::support::sts::*;
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use serde_json::{Value, json};

/// Clients and an audience for the policy rules; `vault-api` takes only bound tokens.
const POLICY: &str = r#"
[[clients]]
client_id = "bound-agent"
secret_sha256 = "$SHA_BOUND"
audiences = ["orders-api", "vault-api"]
dpop = "required"

[[clients]]
client_id = "bearer-agent"
secret_sha256 = "$SHA_BEARER"
audiences = ["orders-api"]
dpop = "off"

[[audiences]]
id = "vault-api"
mode = "on_behalf_of"
scopes = ["vault:read"]
require_dpop = true
[audiences.role_scopes]
developer = ["vault:read"]
"#;

const BOUND_SECRET: &str = "bound-agent-secret";
const BEARER_SECRET: &str = "bearer-agent-secret";

fn policy() -> String {
    POLICY
        .replace("$SHA_BOUND", &mcp_sts::client_auth::hash_secret(BOUND_SECRET))
        .replace("$SHA_BEARER", &mcp_sts::client_auth::hash_secret(BEARER_SECRET))
}

async fn start(extra_tables: &str) -> TestSts {
    TestSts::start_opts(Options {
        extra_clients: policy(),
        extra_tables: extra_tables.to_owned(),
        admin: true,
        ..Options::default()
    })
    .await
}

/// A client's DPoP key: its `kid` is its RFC 7638 thumbprint.
pub(crate) fn new_key() -> SigningKey {
    SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap().0
}

pub(crate) fn header(key: &SigningKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk})
}

pub(crate) fn proof_claims(sts: &TestSts, jti: &str) -> Value {
    json!({"jti": jti, "htm": "POST", "htu": format!("{}/token", sts.url), "iat": sts.clock_now()})
}

pub(crate) fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    key.sign_raw(header, claims).unwrap()
}

/// A valid proof for `/token` by `key`.
pub(crate) fn proof(sts: &TestSts, key: &SigningKey, jti: &str) -> String {
    sign(key, &header(key), &proof_claims(sts, jti))
}

/// An exchange for `audience` by `client`, with these `DPoP` headers.
async fn exchange(sts: &TestSts, client: (&str, &str), audience: &str, proofs: &[&str]) -> Reply {
    let alice = sts.user_token("alice", &["developer"]);
    let body = form(&[
        ("grant_type", EXCHANGE),
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ]);
    let basic = basic_header(client.0, client.1);
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic.as_str()),
    ];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    post_raw(sts, "/token", &headers, body).await
}

const ORDERS_MCP: (&str, &str) = ("orders-mcp", ORDERS_MCP_SECRET);

/// POST `/token` as `client` with this form and these `DPoP` headers.
pub(crate) async fn post_token(sts: &TestSts, client: (&str, &str), pairs: &[(&str, &str)], proofs: &[&str]) -> Reply {
    let basic = basic_header(client.0, client.1);
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic.as_str()),
    ];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    post_raw(sts, "/token", &headers, form(pairs)).await
}

#[tokio::test]
async fn a_proof_binds_the_minted_token_to_its_key() {
    let sts = start("").await;
    let key = new_key();
    let reply = exchange(&sts, ORDERS_MCP, "orders-api", &[&proof(&sts, &key, "p-1")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
    assert_eq!(reply.claims()["cnf"], json!({"jkt": key.kid}));
    assert!(reply.headers.get("dpop-nonce").is_none());

    // Introspection tells a resource server which key to expect.
    let seen = sts.introspect(("orders-api", ORDERS_API_SECRET), &reply.token()).await;
    assert_eq!(seen.body["active"], true, "{}", seen.text);
    assert_eq!(seen.body["token_type"], "DPoP");
    assert_eq!(seen.body["cnf"], json!({"jkt": key.kid}));

    // Without a proof the same client gets a bearer token, as before.
    let bearer = exchange(&sts, ORDERS_MCP, "orders-api", &[]).await;
    assert_eq!(bearer.body["token_type"], "Bearer");
    assert!(bearer.claims().get("cnf").is_none());
    let seen = sts.introspect(("orders-api", ORDERS_API_SECRET), &bearer.token()).await;
    assert_eq!(seen.body["token_type"], "Bearer");
    assert!(seen.body.get("cnf").is_none());

    // The metadata advertises the one algorithm list for proofs.
    let metadata: Value = sts
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", sts.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = metadata["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")) && algs.contains(&json!("EdDSA")));
    assert!(
        !algs
            .iter()
            .any(|a| a == "none" || a.as_str().unwrap().starts_with("HS"))
    );
}

#[tokio::test]
async fn every_broken_proof_rule_is_invalid_dpop_proof_and_mints_nothing() {
    let sts = start("").await;
    let key = new_key();
    let other = new_key();
    let now = sts.clock_now();
    let with = |name: &str, value: Value| {
        let mut claims = proof_claims(&sts, &format!("case-{name}"));
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value;
        }
        sign(&key, &header(&key), &claims)
    };
    let mut private = header(&key);
    private["jwk"]["d"] = json!(b64(&[7u8; 32]));
    let mut rsa_alg = header(&key);
    rsa_alg["alg"] = json!("RS256");
    let mut untyped = header(&key);
    untyped["typ"] = json!("JWT");
    let mut hmac_header = header(&key);
    hmac_header["alg"] = json!("HS256");
    let mut none_header = header(&key);
    none_header["alg"] = json!("none");
    let claims = proof_claims(&sts, "forged");
    let unsigned = format!(
        "{}.{}.",
        b64(none_header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let spent = proof(&sts, &key, "spent");
    assert_eq!(exchange(&sts, ORDERS_MCP, "orders-api", &[&spent]).await.status, 200);

    let cases: Vec<(&str, Vec<String>)> = vec![
        ("replayed proof", vec![spent.clone()]),
        ("htm GET", vec![with("htm", json!("GET"))]),
        (
            "htu of another endpoint",
            vec![with("htu", json!(format!("{}/introspect", sts.url)))],
        ),
        (
            "htu of another host",
            vec![with("htu", json!("https://evil.example/token"))],
        ),
        ("iat 61 s old", vec![with("iat", json!(now - 61))]),
        ("iat 61 s ahead", vec![with("iat", json!(now + 61))]),
        ("no iat", vec![with("iat", Value::Null)]),
        ("no jti", vec![with("jti", Value::Null)]),
        ("no htu", vec![with("htu", Value::Null)]),
        (
            "signed by another key than its jwk",
            vec![sign(&other, &header(&key), &proof_claims(&sts, "swapped"))],
        ),
        (
            "HMAC keyed with the jwk",
            vec![hmac_token(
                "HS256",
                &hmac_header,
                &claims,
                key.public_jwk.to_string().as_bytes(),
            )],
        ),
        ("alg none", vec![unsigned]),
        (
            "private key in the jwk",
            vec![sign(&key, &private, &proof_claims(&sts, "private"))],
        ),
        (
            "alg the key cannot use",
            vec![sign(&key, &rsa_alg, &proof_claims(&sts, "rsa"))],
        ),
        ("typ JWT", vec![sign(&key, &untyped, &proof_claims(&sts, "typ"))]),
        ("not a JWS", vec!["not-a-proof".to_owned()]),
        (
            "two DPoP headers",
            vec![proof(&sts, &key, "two-a"), proof(&sts, &key, "two-b")],
        ),
    ];
    for (name, proofs) in cases {
        let watch = Watch::take(&sts).await;
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let reply = exchange(&sts, ORDERS_MCP, "orders-api", &refs).await;
        assert_eq!(
            (reply.status, reply.error()),
            (400, "invalid_dpop_proof"),
            "{name}: {}",
            reply.text
        );
        reply.assert_error(400, "invalid_dpop_proof");
        assert!(reply.body.get("access_token").is_none(), "{name}");
        watch.unchanged(&sts).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // The edges of the window are inside it.
    for (jti, iat) in [("edge-old", now - 60), ("edge-new", now + 60)] {
        let mut claims = proof_claims(&sts, jti);
        claims["iat"] = json!(iat);
        let reply = exchange(&sts, ORDERS_MCP, "orders-api", &[&sign(&key, &header(&key), &claims)]).await;
        assert_eq!(reply.status, 200, "{jti}: {}", reply.text);
    }
}

#[tokio::test]
async fn a_refused_request_does_not_spend_its_proof() {
    let sts = start("").await;
    let key = new_key();
    let proof = proof(&sts, &key, "kept");
    // Refused after the proof was read (scope outside the grant): the jti stays unused.
    let alice = sts.user_token("alice", &["developer"]);
    let body = form(&[
        ("grant_type", EXCHANGE),
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
        ("scope", "orders:admin"),
    ]);
    let basic = basic_header("orders-mcp", ORDERS_MCP_SECRET);
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic.as_str()),
        ("dpop", proof.as_str()),
    ];
    post_raw(&sts, "/token", &headers, body)
        .await
        .assert_error(400, "invalid_scope");
    let reply = exchange(&sts, ORDERS_MCP, "orders-api", &[&proof]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn clients_and_audiences_choose_whether_tokens_are_bound() {
    let sts = start("").await;
    let key = new_key();
    let bound = (("bound-agent"), BOUND_SECRET);
    let bearer = ("bearer-agent", BEARER_SECRET);

    // dpop = "required": no proof, no token.
    let watch = Watch::take(&sts).await;
    exchange(&sts, bound, "orders-api", &[])
        .await
        .assert_error(400, "invalid_dpop_proof");
    watch.unchanged(&sts).await.unwrap();
    let reply = exchange(&sts, bound, "orders-api", &[&proof(&sts, &key, "b-1")]).await;
    assert_eq!(reply.body["token_type"], "DPoP", "{}", reply.text);

    // dpop = "off": a proof is ignored, the token is a bearer token.
    let reply = exchange(&sts, bearer, "orders-api", &[&proof(&sts, &key, "o-1")]).await;
    assert_eq!(reply.body["token_type"], "Bearer", "{}", reply.text);
    assert!(reply.claims().get("cnf").is_none());

    // require_dpop: an optional client without a proof gets nothing for this audience.
    let extra = [("audience", "vault-api")];
    let watch = Watch::take(&sts).await;
    let alice = sts.user_token("alice", &["developer"]);
    let reply = sts
        .exchange_as(("bound-agent", BOUND_SECRET), &alice, ACCESS_TOKEN, &extra)
        .await;
    reply.assert_error(400, "invalid_dpop_proof");
    watch.unchanged(&sts).await.unwrap();
    let reply = exchange(&sts, bound, "vault-api", &[&proof(&sts, &key, "v-1")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.claims()["cnf"]["jkt"], key.kid);
}

#[tokio::test]
async fn an_optional_client_without_a_proof_is_refused_by_a_bound_only_audience() {
    let extra = "\n[[clients]]\nclient_id = \"vault-caller\"\nsecret_sha256 = \"$SHA\"\naudiences = [\"vault-api\"]\n"
        .replace("$SHA", &mcp_sts::client_auth::hash_secret("vault-caller-secret"));
    let sts = TestSts::start_opts(Options {
        extra_clients: format!("{}{extra}", policy()),
        admin: true,
        ..Options::default()
    })
    .await;
    let caller = ("vault-caller", "vault-caller-secret");
    let watch = Watch::take(&sts).await;
    exchange(&sts, caller, "vault-api", &[])
        .await
        .assert_error(400, "invalid_dpop_proof");
    watch.unchanged(&sts).await.unwrap();
    let key = new_key();
    let reply = exchange(&sts, caller, "vault-api", &[&proof(&sts, &key, "vc-1")]).await;
    assert_eq!(reply.body["token_type"], "DPoP", "{}", reply.text);
}

#[tokio::test]
async fn server_nonces_are_demanded_when_configured() {
    let sts = start("\n[dpop]\nnonce = true\n").await;
    let key = new_key();
    let with_nonce = |jti: &str, nonce: Option<&str>| {
        let mut claims = proof_claims(&sts, jti);
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        sign(&key, &header(&key), &claims)
    };
    // No nonce: use_dpop_nonce with a fresh one, nothing minted.
    let watch = Watch::take(&sts).await;
    let reply = exchange(&sts, ORDERS_MCP, "orders-api", &[&with_nonce("n-0", None)]).await;
    reply.assert_error(400, "use_dpop_nonce");
    watch.unchanged(&sts).await.unwrap();
    let nonce = reply.headers["dpop-nonce"].to_str().unwrap().to_owned();
    assert!(!nonce.is_empty());

    // With it: bound, and the answer carries the next nonce.
    let reply = exchange(&sts, ORDERS_MCP, "orders-api", &[&with_nonce("n-1", Some(&nonce))]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
    assert!(reply.headers.get("dpop-nonce").is_some());

    // A made-up nonce, and one from long ago, are refused with a fresh one.
    for (jti, presented) in [("n-2", "made-up".to_owned()), ("n-3", nonce.clone())] {
        if jti == "n-3" {
            sts.clock.advance(180);
        }
        let reply = exchange(&sts, ORDERS_MCP, "orders-api", &[&with_nonce(jti, Some(&presented))]).await;
        reply.assert_error(400, "use_dpop_nonce");
        assert_ne!(reply.headers["dpop-nonce"].to_str().unwrap(), presented);
    }
    // Requests without a proof are not asked for one.
    let bearer = exchange(&sts, ORDERS_MCP, "orders-api", &[]).await;
    assert_eq!(bearer.body["token_type"], "Bearer", "{}", bearer.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_replay_memory_and_the_nonces() {
    let redis = RedisServer::start();
    let revocation = format!("backend = \"redis\"\nurl = \"{}\"", redis.url());
    let a = TestSts::start_opts(Options {
        revocation: revocation.clone(),
        extra_tables: "\n[dpop]\nnonce = true\n".into(),
        ..Options::default()
    })
    .await;
    let b = TestSts::start_opts(Options {
        revocation,
        extra_tables: "\n[dpop]\nnonce = true\n".into(),
        idp: Some(a.idp.clone()),
        replica_of: Some((a.url.clone(), a.keys_dir.clone())),
        ..Options::default()
    })
    .await;
    let key = new_key();
    // A nonce from replica A is good at replica B.
    let asked = exchange(&a, ORDERS_MCP, "orders-api", &[&proof(&a, &key, "r-0")]).await;
    asked.assert_error(400, "use_dpop_nonce");
    let nonce = asked.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let mut claims = proof_claims(&a, "r-1");
    claims["nonce"] = json!(nonce);
    let proof = sign(&key, &header(&key), &claims);
    let reply = exchange(&b, ORDERS_MCP, "orders-api", &[&proof]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.claims()["cnf"]["jkt"], key.kid);
    // The same proof replayed at replica A is refused.
    exchange(&a, ORDERS_MCP, "orders-api", &[&proof])
        .await
        .assert_error(400, "invalid_dpop_proof");
}
