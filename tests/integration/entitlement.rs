//! Where a user's entitlement comes from: the issuer's `entitlement` setting. Roles
//! by default (the subject token's own `scope` does not widen `role_scopes`), the
//! token's scopes or both only when the configuration says so; `config check` names
//! which applies.

use crate::support::sts::{ACCESS_TOKEN, Options, TestSts};
use serde_json::json;

const NOTES_MCP_SECRET: &str = "notes-mcp-secret";

/// A `notes-api` audience where developers may read, and a client that reaches it.
fn notes_tables() -> String {
    format!(
        r#"
[[clients]]
client_id = "notes-mcp"
secret_sha256 = "{}"
audiences = ["notes-api"]

[[audiences]]
id = "notes-api"
mode = "on_behalf_of"
scopes = ["notes:read", "notes:write"]
[audiences.role_scopes]
developer = ["notes:read"]
"#,
        mcp_sts::client_auth::hash_secret(NOTES_MCP_SECRET)
    )
}

async fn notes_sts(issuer_extra: &str) -> TestSts {
    TestSts::start_opts(Options {
        extra_clients: notes_tables(),
        issuer_extra: issuer_extra.into(),
        ..Options::default()
    })
    .await
}

/// Alice is a developer; her IdP token also carries `scope "notes:read notes:write"`.
fn alice(sts: &TestSts) -> String {
    sts.user_token_with("alice", &["developer"], json!({"scope": "notes:read notes:write"}))
}

async fn exchange(sts: &TestSts, subject: &str, scope: Option<&str>) -> crate::support::sts::Reply {
    let mut extra = vec![("audience", "notes-api")];
    if let Some(scope) = scope {
        extra.push(("scope", scope));
    }
    sts.exchange_as(("notes-mcp", NOTES_MCP_SECRET), subject, ACCESS_TOKEN, &extra)
        .await
}

#[tokio::test]
async fn by_default_the_token_scope_does_not_widen_the_roles() {
    let sts = notes_sts("").await;
    let alice = alice(&sts);
    let refused = exchange(&sts, &alice, Some("notes:read notes:write")).await;
    refused.assert_error(400, "invalid_scope");
    assert_eq!(
        refused.body["error_description"],
        "requested scope refused: not entitled to notes:write"
    );
    let event = sts.audit_events().pop().unwrap();
    assert_eq!(event["decision"], "deny");
    assert_eq!(event["reason"], "invalid_scope:scope.exceeds_grantable");
    assert_eq!(event["refused_scope"], "notes:write");
    assert!(event.get("jti").is_none(), "nothing minted: {event}");

    // Asking for nothing in particular grants what the roles entitle, nothing more.
    let granted = exchange(&sts, &alice, None).await;
    assert_eq!(granted.claims()["scope"], "notes:read");
    assert_eq!(granted.body["scope"], "notes:read");

    // A token with scopes but no role is entitled to nothing.
    let scopes_only = sts.user_token_with("carol", &[], json!({"scope": "notes:read notes:write"}));
    let refused = exchange(&sts, &scopes_only, None).await;
    refused.assert_error(400, "invalid_scope");
    assert_eq!(
        refused.body["error_description"],
        "no scope for this audience can be granted to this subject"
    );
}

#[tokio::test]
async fn both_lets_the_token_scope_widen_the_roles() {
    let sts = notes_sts("entitlement = \"both\"").await;
    let granted = exchange(&sts, &alice(&sts), Some("notes:read notes:write")).await;
    assert_eq!(granted.claims()["scope"], "notes:read notes:write");
    assert_eq!(granted.body["scope"], "notes:read notes:write");
}

#[tokio::test]
async fn token_scopes_ignores_the_roles() {
    let sts = notes_sts("entitlement = \"token_scopes\"").await;
    let granted = exchange(&sts, &alice(&sts), None).await;
    assert_eq!(granted.claims()["scope"], "notes:read notes:write");
    let developer_only = sts.user_token("dave", &["developer"]);
    exchange(&sts, &developer_only, None)
        .await
        .assert_error(400, "invalid_scope");
}

#[test]
fn config_check_names_the_entitlement_of_every_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp-sts.toml");
    let example = std::fs::read_to_string("config/mcp-sts.toml").unwrap();
    let run = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-sts"))
            .args(["config", "check", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(&example);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "issuers[0] https://idp.example.com: entitlement = \"roles\" (the default: roles come from the `roles` \
             claim): users are entitled to the audience's role_scopes for the user's roles"
        ),
        "{out}"
    );
    let both = example.replacen("roles_claim = ", "entitlement = \"both\"\nroles_claim = ", 1);
    let (code, out) = run(&both);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("entitlement = \"both\" (set explicitly): users are entitled to role_scopes for the user's roles plus the subject token's own scope"),
        "{out}"
    );
    // An issuer without a roles claim: its tokens' scopes entitle.
    let (code, out) = run(&example.replacen("roles_claim = \"roles\"", "roles_claim = \"\"", 1));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("entitlement = \"token_scopes\" (the default: roles_claim is empty): users are entitled to the subject token's own scope"),
        "{out}"
    );
    // Roles without a roles claim cannot entitle anyone: an error naming the key.
    let no_claim = both.replacen("roles_claim = \"roles\"", "roles_claim = \"\"", 1);
    let (code, out) = run(&no_claim);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("error: `issuers[0].entitlement`: \"both\" needs a roles claim, but roles_claim is empty"),
        "{out}"
    );
}
