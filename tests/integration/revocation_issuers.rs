//! Users and sessions belong to their issuer: with two trusted IdPs that both have an
//! `alice`, a revocation naming one IdP reaches only its alice, at every door (the
//! exchange, introspection, a further hop, a subscribed verifier); one naming none
//! reaches every issuer's, and so do entries written before entries named an issuer,
//! in every backend. Offboarding lasts until reinstated, long past the retention.

use std::sync::Arc;
use std::time::Duration;

use crate::support::redis_server::RedisServer;
use crate::support::ssf::{Receiver, SESSION_REVOKED, all_events, verify_set};
use crate::support::sts::{ACCESS_TOKEN, JWT, ORDERS_API_SECRET, Options, Reply, TestSts, decode_claims};
use mcp_sts::revocation::NEVER;
use mcp_sts_contract::revocation::RevocationKind;
use mcp_sts_demo::dev_idp::DevIdp;
use mcp_sts_downstream::verify::{RevocationStream, RevocationStreamConfig, Verifier, VerifierConfig, VerifyError};
use reqwest::Method;
use serde_json::{Value, json};

const DAY: u64 = 86_400;

/// mcp-sts trusting its own test IdP and `other`, admin API on, with `revocation`.
async fn start(other: &DevIdp, revocation: String) -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        revocation,
        extra_tables: format!(
            "\n[[issuers]]\nissuer = \"{}\"\naudience = \"mcp-sts\"\nroles_claim = \"roles\"\n",
            other.issuer()
        ),
        ..Options::default()
    })
    .await
}

/// `sub`'s token from `idp`, issued now, with `sid` when given.
fn user(sts: &TestSts, idp: &DevIdp, sub: &str, sid: Option<&str>) -> String {
    let extra = sid.map_or_else(|| json!({}), |sid| json!({"sid": sid}));
    idp.user_token(sub, "mcp-sts", &["developer"], sts.clock_now(), 3600, &extra)
        .unwrap()
}

async fn exchange(sts: &TestSts, subject: &str) -> Reply {
    sts.exchange(subject, &[("audience", "orders-api")]).await
}

/// The exchange answer's status and, when refused, its rule-naming description.
async fn verdict(sts: &TestSts, subject: &str) -> (u16, String) {
    let reply = exchange(sts, subject).await;
    let description = reply.body["error_description"].as_str().unwrap_or_default().to_owned();
    (reply.status, description)
}

fn encoded(issuer: &str) -> String {
    form_urlencoded::byte_serialize(issuer.as_bytes()).collect()
}

async fn revoke(sts: &TestSts, body: Value) -> Reply {
    sts.admin(Method::POST, "", Some(body)).await
}

async fn revocations(sts: &TestSts) -> Value {
    sts.admin(Method::GET, "", None).await.body
}

#[tokio::test]
async fn admin_revocations_name_the_users_issuer_or_cover_every_issuer() {
    let other = DevIdp::start_local().await.unwrap();
    let sts = start(&other, String::new()).await;
    let here = sts.idp.issuer().to_owned();
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let mut events = all_events(&sts.url);
    events.push(format!("{}/ssf/event-type/reinstated", sts.url));
    let stream = receiver.create_poll_stream(&events).await;
    let poll = stream["delivery"]["endpoint_url"].as_str().unwrap().to_owned();

    // alice of this IdP only: held until reinstated, and the answer says whom it covers.
    let reply = revoke(
        &sts,
        json!({"kind": "subject", "value": "alice", "reason": "left", "issuer": here}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["issuer"], here);
    assert_eq!(reply.body["covers"], format!("issuer {here}"));
    assert_eq!(reply.body["expires_at"], NEVER);
    assert_eq!(verdict(&sts, &user(&sts, &sts.idp, "alice", None)).await.0, 400);
    assert_eq!(verdict(&sts, &user(&sts, &other, "alice", None)).await.0, 200);

    // bob, naming no issuer: every issuer's bob.
    let reply = revoke(&sts, json!({"kind": "subject", "value": "bob", "reason": "left"})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(reply.body.get("issuer").is_none(), "{}", reply.text);
    assert_eq!(reply.body["covers"], "every issuer");
    for idp in [&sts.idp, &other] {
        assert_eq!(verdict(&sts, &user(&sts, idp, "bob", None)).await.0, 400);
    }

    // A session of the other IdP only.
    let reply = revoke(
        &sts,
        json!({"kind": "session", "value": "s-9", "issuer": other.issuer()}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.body["expires_at"],
        sts.clock_now() + 30 * DAY,
        "a session's entry lasts the retention"
    );
    let (status, why) = verdict(&sts, &user(&sts, &other, "carol", Some("s-9"))).await;
    assert_eq!((status, why.contains("session")), (400, true), "{why}");
    assert_eq!(verdict(&sts, &user(&sts, &sts.idp, "carol", Some("s-9"))).await.0, 200);

    // The audit says whom each revocation covers.
    let details: Vec<String> = sts
        .audit_events()
        .iter()
        .filter(|e| e["event"] == "admin_revoke")
        .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(details[0].contains(&format!("covers issuer {here}")), "{details:?}");
    assert!(details[0].contains("until reinstated"), "{details:?}");
    assert!(details[1].contains("covers every issuer"), "{details:?}");

    // The SETs name the issuer; with two issuers trusted, "every issuer" is mcp-sts's own.
    let sets = receiver.poll_now(&poll, &[]).await;
    let acks: Vec<String> = sets.keys().cloned().collect();
    let mut subjects = Vec::new();
    for set in sets.values() {
        let claims = verify_set(&sts.url, set.as_str().unwrap(), &sts.url, "orders-api").await;
        assert!(claims["events"].get(SESSION_REVOKED).is_some(), "{claims}");
        subjects.push(claims["sub_id"].clone());
    }
    for expected in [
        json!({"format": "iss_sub", "iss": here, "sub": "alice"}),
        json!({"format": "iss_sub", "iss": sts.url, "sub": "bob"}),
        json!({"format": "complex", "session": {"format": "opaque", "id": "s-9"},
               "tenant": {"format": "uri", "uri": other.issuer()}}),
    ] {
        assert!(subjects.contains(&expected), "{expected} not in {subjects:?}");
    }

    // Reinstating names the entry: without an issuer, alice has no entry for every
    // issuer (404, nothing changed); with it, her revocation ends.
    let before = revocations(&sts).await;
    let reply = sts.admin(Method::DELETE, "/subject/alice", None).await;
    assert_eq!((reply.status, reply.error()), (404, "not_found"));
    assert_eq!(revocations(&sts).await, before, "nothing was changed");
    let reply = sts
        .admin(
            Method::DELETE,
            &format!("/subject/alice?issuer={}", encoded(&here)),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["reinstated"],
        json!({"kind": "subject", "value": "alice", "issuer": here, "covers": format!("issuer {here}")})
    );
    assert_eq!(verdict(&sts, &user(&sts, &sts.idp, "alice", None)).await.0, 200);

    // Receivers that asked for it hear the reinstatement, naming the same subject.
    let sets = receiver.poll_now(&poll, &acks).await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    let set = sets.values().next().unwrap().as_str().unwrap();
    let claims = verify_set(&sts.url, set, &sts.url, "orders-api").await;
    assert_eq!(
        claims["sub_id"],
        json!({"format": "iss_sub", "iss": here, "sub": "alice"})
    );
    let reinstated = &claims["events"][format!("{}/ssf/event-type/reinstated", sts.url)];
    assert_eq!(reinstated["kind"], "subject", "{claims}");
    assert_eq!(reinstated["event_timestamp"], sts.clock_now());
}

#[tokio::test]
async fn bad_issuer_and_expiry_requests_are_refused_and_change_nothing() {
    let other = DevIdp::start_local().await.unwrap();
    let sts = start(&other, String::new()).await;
    let here = sts.idp.issuer().to_owned();
    assert_eq!(
        revoke(&sts, json!({"kind": "subject", "value": "alice", "issuer": here}))
            .await
            .status,
        201
    );
    let bodies = [
        json!({"kind": "subject", "value": "x", "issuer": "https://untrusted.example"}),
        json!({"kind": "session", "value": "x", "issuer": ""}),
        json!({"kind": "agent", "value": "x", "issuer": here}),
        json!({"kind": "client", "value": "x", "issuer": here}),
        json!({"kind": "token", "value": "x", "issuer": here}),
        json!({"kind": "subject", "value": "x", "expires_in": 0}),
        json!({"kind": "subject", "value": "x", "expires_in": u64::MAX}),
        json!({"kind": "subject", "value": "x", "expires_in": "soon"}),
        json!({"kind": "subject", "value": "x", "issuer": 7}),
    ];
    let paths = [
        format!("/subject/alice?issuer={}&issuer={}", encoded(&here), encoded(&here)),
        format!("/subject/alice?iss={}", encoded(&here)),
        format!("/agent/alice?issuer={}", encoded(&here)),
    ];
    let before = revocations(&sts).await;
    let events = sts.audit_events().len();
    for body in bodies {
        let reply = revoke(&sts, body.clone()).await;
        assert_eq!((reply.status, reply.error()), (400, "invalid_request"), "{body}");
    }
    for path in &paths {
        let reply = sts.admin(Method::DELETE, path, None).await;
        assert_eq!((reply.status, reply.error()), (400, "invalid_request"), "{path}");
    }
    assert_eq!(revocations(&sts).await, before, "nothing was changed");
    assert!(
        sts.audit_events()
            .iter()
            .skip(events)
            .all(|e| e["decision"] != "allow" || e["event"] == "admin_list"),
        "nothing was allowed"
    );
    assert_eq!(verdict(&sts, &user(&sts, &sts.idp, "alice", None)).await.0, 400);
}

#[tokio::test]
async fn offboarding_holds_past_the_retention_until_reinstated() {
    let other = DevIdp::start_local().await.unwrap();
    let sts = start(&other, String::new()).await;
    for (kind, value) in [("subject", "alice"), ("agent", "rogue-agent"), ("client", "watcher")] {
        sts.admin_revoke(kind, value).await;
    }
    sts.admin_revoke("session", "s-old").await;
    let lapsing = revoke(&sts, json!({"kind": "subject", "value": "dave", "expires_in": 3600})).await;
    assert_eq!(lapsing.body["expires_at"], sts.clock_now() + 3600);

    // Well past the 30 days of `retention_seconds`, and a year later still.
    for advance in [31 * DAY, 365 * DAY] {
        sts.clock.advance(advance);
        let (status, why) = verdict(&sts, &user(&sts, &sts.idp, "alice", None)).await;
        assert_eq!((status, why.contains("subject")), (400, true), "{why}");
        let via_agent = sts
            .exchange(
                &user(&sts, &sts.idp, "erin", None),
                &[
                    ("audience", "orders-api"),
                    ("actor_token", &sts.agent_token("rogue-agent")),
                    ("actor_token_type", JWT),
                ],
            )
            .await;
        via_agent.assert_error(400, "invalid_request");
        let watcher = sts
            .introspect(("watcher", crate::support::sts::WATCHER_SECRET), "x")
            .await;
        assert_eq!(watcher.status, 401, "a revoked client stays shut out");
        // The session's entry and the one asked to lapse are gone.
        assert_eq!(
            verdict(&sts, &user(&sts, &sts.idp, "frank", Some("s-old"))).await.0,
            200
        );
        assert_eq!(verdict(&sts, &user(&sts, &sts.idp, "dave", None)).await.0, 200);
    }
    let listed = revocations(&sts).await;
    let kinds: Vec<(&str, u64)> = listed["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["expires_at"].as_u64().unwrap()))
        .collect();
    assert_eq!(kinds, [("subject", NEVER), ("agent", NEVER), ("client", NEVER)]);

    // Reinstated: the user gets tokens again.
    assert_eq!(sts.admin(Method::DELETE, "/subject/alice", None).await.status, 200);
    assert_eq!(verdict(&sts, &user(&sts, &sts.idp, "alice", None)).await.0, 200);
}

#[tokio::test]
async fn in_redis_offboarding_has_no_expiry_and_a_session_keeps_its_own() {
    let redis = RedisServer::start();
    let other = DevIdp::start_local().await.unwrap();
    let sts = start(
        &other,
        format!("backend = \"redis\"\nurl = \"{}\"\ntimeout_ms = 500", redis.url()),
    )
    .await;
    let here = sts.idp.issuer().to_owned();
    assert_eq!(
        revoke(&sts, json!({"kind": "subject", "value": "alice", "issuer": here}))
            .await
            .status,
        201
    );
    sts.admin_revoke("session", "s-1").await;
    let mut conn = redis.connection();
    let ttl = |conn: &mut redis::Connection, key: &str| -> i64 { redis::cmd("TTL").arg(key).query(conn).unwrap() };
    let scoped = format!("mcp-sts:rev:subject@{}:{here}:alice", here.len());
    assert_eq!(ttl(&mut conn, &scoped), -1, "kept until reinstated");
    assert!(ttl(&mut conn, "mcp-sts:rev:session:s-1") > 0, "a session lapses");
    sts.clock.advance(31 * DAY);
    assert_eq!(verdict(&sts, &user(&sts, &sts.idp, "alice", None)).await.0, 400);
    assert_eq!(verdict(&sts, &user(&sts, &other, "alice", None)).await.0, 200);
}

/// An entry as every release before issuers were recorded wrote it.
fn old_entry(value: &str, now: u64) -> String {
    json!({
        "kind": "subject", "value": value, "reason": "offboarded", "revoked_by": "admin",
        "revoked_at": now - 10, "expires_at": now + 30 * DAY,
    })
    .to_string()
}

/// alice of both IdPs refused, and the old entry listed as covering every issuer.
async fn reads_as_every_issuer(sts: &TestSts, other: &DevIdp) {
    for idp in [&sts.idp, other] {
        let (status, why) = verdict(sts, &user(sts, idp, "alice", None)).await;
        assert_eq!((status, why.contains("subject")), (400, true), "{why}");
    }
    assert_eq!(verdict(sts, &user(sts, other, "bob", None)).await.0, 200);
    let listed = revocations(sts).await;
    let entry = &listed["revocations"][0];
    assert_eq!(
        (&entry["value"], &entry["covers"]),
        (&json!("alice"), &json!("every issuer"))
    );
    assert!(entry.get("issuer").is_none(), "{entry}");
}

#[tokio::test]
async fn entries_written_before_issuers_were_recorded_cover_every_issuer_in_the_embedded_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.redb");
    // Create the file as the store lays it out, then write an old entry into it.
    drop(mcp_sts::revocation::embedded::EmbeddedStore::open(&path).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("revocations");
            let mut table = tx.open_table(table).unwrap();
            let entry = old_entry("alice", crate::support::sts::T0);
            table.insert("subject:alice", entry.as_bytes()).unwrap();
        }
        tx.commit().unwrap();
    }
    let other = DevIdp::start_local().await.unwrap();
    let sts = start(
        &other,
        format!("backend = \"embedded\"\npath = {:?}", path.display().to_string()),
    )
    .await;
    reads_as_every_issuer(&sts, &other).await;
}

#[tokio::test]
async fn entries_written_before_issuers_were_recorded_cover_every_issuer_in_redis() {
    let redis = RedisServer::start();
    let mut conn = redis.connection();
    let _: () = redis::cmd("SET")
        .arg("mcp-sts:rev:subject:alice")
        .arg(old_entry("alice", crate::support::sts::T0))
        .query(&mut conn)
        .unwrap();
    let other = DevIdp::start_local().await.unwrap();
    let sts = start(
        &other,
        format!("backend = \"redis\"\nurl = \"{}\"\ntimeout_ms = 500", redis.url()),
    )
    .await;
    reads_as_every_issuer(&sts, &other).await;
}

#[tokio::test]
async fn a_verifiers_state_file_from_before_issuers_covers_every_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let old = json!({"version": 1, "stream_id": "s", "covered_since": 100,
        "revoked": [{"kind": "subject", "value": "alice", "revoked_at": 200}]});
    std::fs::write(&path, old.to_string()).unwrap();
    let mut config = RevocationStreamConfig::new("https://sts.example", "orders-api", "secret");
    config.state_path = Some(path);
    let stream = RevocationStream::new(config).unwrap();
    assert_eq!(stream.heard_for(RevocationKind::Subject, None, "alice"), Some(200));
    let claims = |issuer: &str| {
        let value = json!({
            "iss": "https://sts.example", "sub": "alice", "aud": "orders-api", "exp": 400, "iat": 150,
            "jti": "j", "client_id": "orders-mcp", "delegation_mode": "on_behalf_of", "sid": "s", "txn": "t",
            "sub_id": {"format": "iss_sub", "iss": issuer, "sub": "alice"},
        });
        mcp_sts_contract::AccessClaims::from_claims(value.as_object().unwrap().clone()).unwrap()
    };
    for issuer in ["https://idp-a", "https://idp-b"] {
        assert_eq!(stream.check(&claims(issuer), 300).unwrap_err(), VerifyError::Revoked);
    }
}

/// A verifier for orders-api subscribed to `sts`, covering tokens from now on.
async fn subscribed_verifier(sts: &TestSts) -> (Verifier, Arc<RevocationStream>) {
    let mut config = RevocationStreamConfig::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    config.leeway = Duration::ZERO;
    let stream = Arc::new(RevocationStream::new(config).unwrap());
    stream.poll_once(sts.clock_now()).await.unwrap();
    sts.clock.advance(5);
    let mut verifier = VerifierConfig::new(&sts.url, "orders-api");
    verifier.revocation_stream = Some(stream.clone());
    (Verifier::new(verifier).unwrap(), stream)
}

#[tokio::test]
async fn every_door_applies_the_issuer_rule_to_minted_tokens() {
    let other = DevIdp::start_local().await.unwrap();
    let sts = start(&other, String::new()).await;
    let here = sts.idp.issuer().to_owned();
    let (verifier, stream) = subscribed_verifier(&sts).await;
    let mint = |idp: &DevIdp, sub: &str, sid: &str| {
        let subject = user(&sts, idp, sub, Some(sid));
        let sts = &sts;
        async move { exchange(sts, &subject).await.token() }
    };
    let alice_here = mint(&sts.idp, "alice", "s-1").await;
    let alice_there = mint(&other, "alice", "s-1").await;
    let bob_here = mint(&sts.idp, "bob", "s-2").await;
    let bob_there = mint(&other, "bob", "s-2").await;
    let carol_here = mint(&sts.idp, "carol", "s-3").await;
    let carol_there = mint(&other, "carol", "s-3").await;
    assert_eq!(
        decode_claims(&alice_there)["sub_id"],
        json!({"format": "iss_sub", "iss": other.issuer(), "sub": "alice"})
    );

    revoke(&sts, json!({"kind": "subject", "value": "alice", "issuer": here})).await;
    revoke(
        &sts,
        json!({"kind": "session", "value": "s-2", "issuer": other.issuer()}),
    )
    .await;
    revoke(&sts, json!({"kind": "subject", "value": "carol"})).await;
    assert_eq!(stream.poll_once(sts.clock_now()).await.unwrap(), 3);
    let now = sts.clock_now();

    // Refused: this IdP's alice, the other IdP's session, every issuer's carol.
    let refused = [&alice_here, &bob_there, &carol_here, &carol_there];
    let accepted = [&alice_there, &bob_here];
    for token in refused {
        assert_eq!(verifier.verify_at(token, now).await.unwrap_err(), VerifyError::Revoked);
        let reply = sts.introspect(("orders-api", ORDERS_API_SECRET), token).await;
        assert_eq!(reply.body, json!({"active": false}));
        let hop = sts
            .exchange_as(
                ("orders-api", ORDERS_API_SECRET),
                token,
                ACCESS_TOKEN,
                &[("audience", "billing-api")],
            )
            .await;
        hop.assert_error(400, "invalid_request");
    }
    for token in accepted {
        let identity = verifier.verify_at(token, now).await.unwrap();
        assert!(identity.user_issuer().is_some());
        let reply = sts.introspect(("orders-api", ORDERS_API_SECRET), token).await;
        assert_eq!(reply.body["active"], true, "{}", reply.text);
        assert_eq!(reply.body["sub_id"], decode_claims(token)["sub_id"]);
        let hop = sts
            .exchange_as(
                ("orders-api", ORDERS_API_SECRET),
                token,
                ACCESS_TOKEN,
                &[("audience", "billing-api")],
            )
            .await;
        assert_eq!(hop.status, 200, "{}", hop.text);
        // The hop keeps the user's issuer, so the rule holds down the chain.
        assert_eq!(hop.claims()["sub_id"], decode_claims(token)["sub_id"]);
    }
    assert_eq!(
        verifier.verify_at(&alice_there, now).await.unwrap().user_issuer(),
        Some(other.issuer())
    );

    // carol reinstated later: mcp-sts takes her tokens again, and so does the verifier
    // once it hears it.
    sts.clock.advance(10);
    assert_eq!(sts.admin(Method::DELETE, "/subject/carol", None).await.status, 200);
    assert_eq!(stream.poll_once(sts.clock_now()).await.unwrap(), 1);
    let now = sts.clock_now();
    for token in [&carol_here, &carol_there] {
        verifier.verify_at(token, now).await.unwrap();
        let reply = sts.introspect(("orders-api", ORDERS_API_SECRET), token).await;
        assert_eq!(reply.body["active"], true, "{}", reply.text);
    }
    assert_eq!(
        verifier.verify_at(&alice_here, now).await.unwrap_err(),
        VerifyError::Revoked
    );
}
