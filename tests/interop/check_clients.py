"""Exchange clients: node openid-client v6 (genericGrantRequest) and Python Authlib
(OAuth2Session.fetch_token), each with client_secret_basic and client_secret_post."""

from __future__ import annotations

import jwt
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from harness import ACCESS_TOKEN, ID_TOKEN, TOKEN_EXCHANGE


def run(env, results) -> None:
    sts = env.sts
    alice_id = env.upstream["alice"]["id_token"]
    bob_at = env.upstream["bob"]["access_token"]

    def params(subject, subject_type, **extra):
        p = {"subject_token": subject, "subject_token_type": subject_type}
        p.update(extra)
        return p

    for method in ("basic", "post"):
        label = f"client_secret_{method}"

        def node(secret=sts.secret, **p):
            return env.node.call(op="exchange", issuer=sts.url, client_id=sts.CLIENT_ID, secret=secret, method=method, params=p)

        def oc_success(node=node):
            r = node(**params(alice_id, ID_TOKEN, audience="orders-api", scope="orders:read"))
            assert r["ok"], r
            assert r["token_type"].lower() == "bearer" and r["issued_token_type"] == ACCESS_TOKEN, r
            c = jwt.decode(r["access_token"], options={"verify_signature": False})
            assert c["sub"] == "alice" and c["aud"] == "orders-api" and c["scope"] == "orders:read", c

        results.check(f"openid-client {label}: discovery (RFC 8414) + genericGrantRequest mints a token for alice", oc_success)

        def oc_errors(node=node):
            scope = node(**params(bob_at, ACCESS_TOKEN, audience="orders-api", scope="orders:admin"))
            target = node(**params(alice_id, ID_TOKEN, audience="payments-api"))
            bad_client = node(secret="wrong-secret", **params(alice_id, ID_TOKEN, audience="orders-api"))
            seen = [(r.get("name"), r.get("error"), r.get("status")) for r in (scope, target)]
            assert seen == [("ResponseBodyError", "invalid_scope", 400), ("ResponseBodyError", "invalid_target", 400)], seen
            # openid-client turns any 401 carrying WWW-Authenticate (RFC 6749 §5.2) into a
            # WWWAuthenticateChallengeError: the challenge is parsed, the body code is on .response.
            bc = bad_client
            assert (bc.get("name"), bc.get("status"), bc.get("body_error")) == \
                ("WWWAuthenticateChallengeError", 401, "invalid_client"), bc
            assert bc["challenges"] == [{"scheme": "basic", "parameters": {"realm": "mcp-sts"}}], bc["challenges"]

        results.check(f"openid-client {label}: ResponseBodyError.error invalid_scope / invalid_target; bad secret -> 401 WWWAuthenticateChallengeError (Basic), body invalid_client", oc_errors)

        def session(secret=sts.secret, method=method):
            return OAuth2Session(sts.CLIENT_ID, secret, token_endpoint_auth_method=f"client_secret_{method}")

        def fetch(s, **p):
            return s.fetch_token(f"{sts.url}/token", grant_type=TOKEN_EXCHANGE, **p)

        def authlib_success(session=session):
            with session() as s:
                token = fetch(s, **params(bob_at, ACCESS_TOKEN, audience="orders-api"))
            assert token["token_type"].lower() == "bearer" and token["issued_token_type"] == ACCESS_TOKEN, token
            c = jwt.decode(token["access_token"], options={"verify_signature": False})
            assert c["sub"] == "bob" and c["aud"] == "orders-api" and c["scope"] == "orders:read", c

        results.check(f"authlib {label}: OAuth2Session.fetch_token(grant_type=token-exchange) mints a token for bob", authlib_success)

        def authlib_errors(session=session):
            seen = []
            for secret, p in (
                (sts.secret, params(bob_at, ACCESS_TOKEN, audience="orders-api", scope="orders:admin")),
                (sts.secret, params(alice_id, ID_TOKEN, audience="payments-api")),
                ("wrong-secret", params(alice_id, ID_TOKEN, audience="orders-api")),
            ):
                try:
                    with session(secret) as s:
                        fetch(s, **p)
                    seen.append("no error")
                except OAuthError as error:
                    seen.append(error.error)
            assert seen == ["invalid_scope", "invalid_target", "invalid_client"], seen

        results.check(f"authlib {label}: OAuthError.error is invalid_scope / invalid_target / invalid_client", authlib_errors)

    def authlib_introspect_and_revoke():
        # RFC 7662 / RFC 7009 through Authlib's own helpers, as the client the token was issued to.
        with OAuth2Session(sts.CLIENT_ID, sts.secret, token_endpoint_auth_method="client_secret_basic") as s:
            token = s.fetch_token(f"{sts.url}/token", grant_type=TOKEN_EXCHANGE,
                                  **params(bob_at, ACCESS_TOKEN, audience="orders-api"))["access_token"]
            active = s.introspect_token(f"{sts.url}/introspect", token=token, token_type_hint="access_token")
            assert active.status_code == 200, active.text
            body = active.json()
            assert body["active"] is True and body["sub"] == "bob" and body["aud"] == "orders-api", body
            revoked = s.revoke_token(f"{sts.url}/revoke", token=token, token_type_hint="access_token")
            assert revoked.status_code == 200, revoked.text
            after = s.introspect_token(f"{sts.url}/introspect", token=token)
            assert after.status_code == 200 and after.json() == {"active": False}, after.text
            unknown = s.revoke_token(f"{sts.url}/revoke", token="not-a-token")
            assert unknown.status_code == 200, unknown.text

    results.check("authlib: introspect_token (RFC 7662) active for its client, revoke_token (RFC 7009) ends it, unknown token still 200", authlib_introspect_and_revoke)
