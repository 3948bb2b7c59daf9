"""Enterprise-managed authorization (draft-ietf-oauth-identity-assertion-authz-grant),
from the outside. A client written with joserfc and httpx follows the draft step by step
against mcp-sts in both roles: alice signs in at oidc-provider as the agent application
`claude-desktop`; the agent trades her ID token for an ID-JAG (RFC 8693, §4.3) and
verifies it against mcp-sts's JWKS; then redeems it (RFC 7523 §2.1, §4.4) for an access
token, verified the same way. Bad inputs get the RFC 6749 / 7523 / 8693 codes and mint
nothing. An independent issuer (jag_issuer.py: its own key, its JWKS over HTTP) issues
grants that mcp-sts redeems, and mcp-sts refuses its grants with a wrong key or `typ`."""

from __future__ import annotations

import httpx
import jwt as pyjwt
from joserfc import jwt
from joserfc.jwk import KeySet

from harness import ID_JAG_TYPE, ID_TOKEN, JWT_BEARER, TOKEN_EXCHANGE, error_of
from upstream import oidc_login

ID_JAG_TYP = "oauth-id-jag+jwt"
SCOPE = "mcp:tools"


def run(env, results) -> None:
    sts, jag = env.sts, env.jag_issuer
    agent = (sts.AGENT_ID, sts.agent_secret)
    state: dict = {}

    def post(form: dict, auth=agent) -> httpx.Response:
        return httpx.post(f"{sts.url}/token", data={k: v for k, v in form.items() if v is not None},
                          auth=auth, timeout=10)

    def ask_grant(id_token: str, **extra) -> httpx.Response:
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "requested_token_type": ID_JAG_TYPE,
            "subject_token": id_token,
            "subject_token_type": ID_TOKEN,
            "audience": sts.url,
            "resource": sts.JAG_RESOURCE,
            "scope": SCOPE,
        }
        form.update(extra)
        return post(form)

    def redeem(assertion: str, auth=agent, **extra) -> httpx.Response:
        return post({"grant_type": JWT_BEARER, "assertion": assertion, **extra}, auth)

    def verified(token: str) -> jwt.Token:
        """Signature against mcp-sts's JWKS (the kid picks the key), ES256 only."""
        keys = KeySet.import_key_set(httpx.get(f"{sts.url}/.well-known/jwks.json", timeout=5).json())
        return jwt.decode(token, keys, algorithms=["ES256"])

    def refused(response: httpx.Response, status: int, code: str, says: str = "") -> str:
        """A refusal with this status and code (and `says` in its description) minting nothing."""
        seen = error_of(response)
        assert seen == (status, code), f"expected {(status, code)}, got {seen}: {response.text}"
        assert says in response.json().get("error_description", ""), response.text
        assert "access_token" not in response.json(), response.text
        assert response.headers.get("cache-control") == "no-store", response.headers
        return code

    def login():
        tokens = oidc_login(env.oidc_issuer, "alice", None, env.redirect_uri, client_id=sts.AGENT_ID)
        keys = KeySet.import_key_set(_oidc_jwks(env.oidc_issuer))
        claims = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"]).claims
        assert claims["aud"] == sts.AGENT_ID and claims["sub"] == "alice", claims
        state["id_token"] = tokens["id_token"]

    results.check("id-jag: alice signs in at oidc-provider as claude-desktop; her ID token (aud claude-desktop) verifies with joserfc", login)

    def issue():
        r = ask_grant(state["id_token"])
        assert r.status_code == 200, r.text
        body = r.json()
        # RFC 8693 §2.2.1 as the draft profiles it: the grant is not an access token.
        assert body["issued_token_type"] == ID_JAG_TYPE and body["token_type"] == "N_A", body
        assert body["scope"] == SCOPE and 0 < body["expires_in"] <= 300, body
        assert r.headers.get("cache-control") == "no-store", r.headers
        token = verified(body["access_token"])
        assert token.header["typ"] == ID_JAG_TYP and token.header["alg"] == "ES256", token.header
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": sts.url},
            sub={"essential": True, "value": "alice"},
            aud={"essential": True, "value": sts.url},
            client_id={"essential": True, "value": sts.AGENT_ID},
            resource={"essential": True, "value": sts.JAG_RESOURCE},
            scope={"essential": True, "value": SCOPE},
            jti={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        ).validate(token.claims)
        assert token.claims["exp"] - token.claims["iat"] == body["expires_in"], token.claims
        state["grant"] = body["access_token"]
        state["grant_claims"] = token.claims

    results.check("id-jag: token exchange (requested_token_type id-jag) -> issued_token_type id-jag, token_type N_A; "
                  "joserfc verifies typ oauth-id-jag+jwt and iss/sub/aud/resource/client_id/jti/exp/iat/scope", issue)

    def issuance_refusals():
        id_token = state["id_token"]
        seen = [
            refused(ask_grant(id_token, audience="https://unknown-as.example"), 400, "invalid_target"),
            refused(ask_grant(id_token, resource="https://unknown.example/mcp"), 400, "invalid_target"),
            refused(ask_grant(id_token, scope="mcp:tools mcp:admin"), 400, "invalid_scope"),
            refused(ask_grant(id_token, resource=None), 400, "invalid_request"),
            # An ID token issued to another client (oidc-provider's client mcp-sts).
            refused(ask_grant(env.upstream["alice"]["id_token"]), 400, "invalid_request"),
            refused(ask_grant(id_token, actor_token=id_token, actor_token_type=ID_TOKEN), 400, "invalid_request"),
            # A client that lists no authorization server may not obtain grants.
            refused(post({"grant_type": TOKEN_EXCHANGE, "requested_token_type": ID_JAG_TYPE,
                          "subject_token": id_token, "subject_token_type": ID_TOKEN, "audience": sts.url,
                          "resource": sts.JAG_RESOURCE}, (sts.CLIENT_ID, sts.secret)), 400, "unauthorized_client"),
        ]
        assert len(seen) == 7

    results.check("id-jag: issuance refusals: unknown audience / resource -> invalid_target, scope beyond entitlement -> "
                  "invalid_scope, no resource / ID token of another client / actor_token -> invalid_request, "
                  "client without authorization servers -> unauthorized_client", issuance_refusals)

    def redemption():
        grant = state["grant"]
        # Refused for another reason first: the grant is not spent by a refusal.
        refused(redeem(grant, auth=(sts.CLIENT_ID, sts.secret)), 400, "invalid_grant")
        refused(redeem(grant, scope="mcp:admin"), 400, "invalid_scope")
        r = redeem(grant)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["token_type"] == "Bearer" and "issued_token_type" not in body, body
        assert body["scope"] == SCOPE, body
        token = verified(body["access_token"])
        assert token.header["typ"] == "at+jwt", token.header
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": sts.url},
            sub={"essential": True, "value": "alice"},
            aud={"essential": True, "value": sts.JAG_RESOURCE},
            client_id={"essential": True, "value": sts.AGENT_ID},
            scope={"essential": True, "value": SCOPE},
            jti={"essential": True},
            exp={"essential": True},
        ).validate(token.claims)
        assert token.claims["act"] == {"sub": sts.AGENT_ID, "sub_profile": "ai_agent"}, token.claims
        assert token.claims["sid"] == state["grant_claims"].get("sid", token.claims["sid"]), token.claims
        state["access"] = body["access_token"]

    results.check("id-jag: jwt-bearer redemption (RFC 7523) at mcp-sts as the MCP server's authorization server -> "
                  "Bearer at+jwt verified with joserfc: sub alice, aud the MCP server, act claude-desktop; "
                  "a refusal (other client, excess scope) does not spend the grant", redemption)

    def redemption_refusals():
        seen = [
            refused(redeem(state["grant"]), 400, "invalid_grant", "already been used"),  # replayed
            refused(redeem(state["access"]), 400, "invalid_grant"),  # an access token is not a grant
            refused(redeem(state["id_token"]), 400, "invalid_grant"),  # nor is an ID token
            refused(redeem("not.a.jwt"), 400, "invalid_grant"),
            refused(post({"grant_type": JWT_BEARER}), 400, "invalid_request"),  # no assertion
            refused(redeem(state["grant"], auth=(sts.AGENT_ID, "wrong-secret")), 401, "invalid_client"),
        ]
        assert len(seen) == 6

    results.check("id-jag: redemption refusals: replayed grant / access token / ID token / garbage -> invalid_grant, "
                  "no assertion -> invalid_request, bad client secret -> 401 invalid_client", redemption_refusals)

    def outside_grant(**overrides) -> dict:
        claims = jag.claims(sub="dana", audience=sts.url, client_id=sts.AGENT_ID,
                            resource=sts.JAG_RESOURCE, scope=SCOPE)
        claims.update(overrides)
        return claims

    def independent_issuer():
        r = redeem(jag.sign(outside_grant()))
        assert r.status_code == 200, r.text
        token = verified(r.json()["access_token"])
        claims = token.claims
        assert (claims["sub"], claims["aud"], claims["client_id"]) == ("dana", sts.JAG_RESOURCE, sts.AGENT_ID), claims
        assert claims["act"] == {"sub": sts.AGENT_ID, "sub_profile": "ai_agent"} and claims["scope"] == SCOPE, claims
        assert claims["iss"] == sts.url, claims

    results.check("id-jag: an independent issuer (joserfc, own P-256 key, JWKS over HTTP, accept_id_jag) -> "
                  "mcp-sts redeems its grant for dana", independent_issuer)

    def independent_refusals():
        # Shaped and typed as a grant, but signed by the Teleport-shaped issuer, whose
        # tokens mcp-sts trusts as subject tokens only (no accept_id_jag).
        key, kid = env.teleport.keys["ES256"]
        not_for_grants = pyjwt.encode({**outside_grant(), "iss": env.teleport.CLUSTER}, key, algorithm="ES256",
                                      headers={"kid": kid, "typ": ID_JAG_TYP})
        bad = "invalid_grant"
        seen = [
            refused(redeem(jag.sign(outside_grant(), key=jag.impostor)), 400, bad, "signature"),  # wrong key
            refused(redeem(jag.sign(outside_grant(), typ="JWT")), 400, bad, "not typed oauth-id-jag+jwt"),
            refused(redeem(jag.sign(outside_grant(), typ="at+jwt")), 400, bad, "not typed oauth-id-jag+jwt"),
            refused(redeem(jag.sign(outside_grant(aud="https://another-as.example"))), 400, bad, "not addressed"),
            refused(redeem(jag.sign(outside_grant(client_id="someone-else"))), 400, bad, "another client"),
            refused(redeem(jag.sign(outside_grant(exp=outside_grant()["iat"] - 120))), 400, bad, "expired"),
            refused(redeem(not_for_grants), 400, bad, "not from an issuer trusted for grants"),
        ]
        assert len(seen) == 7
        # None of these spent anything: a good grant still redeems.
        assert redeem(jag.sign(outside_grant())).status_code == 200

    results.check("id-jag: the independent issuer's grant with a wrong key / typ JWT / typ at+jwt / another aud / "
                  "another client / expired, and a grant from an issuer not trusted for grants -> invalid_grant",
                  independent_refusals)


def _oidc_jwks(issuer: str) -> dict:
    meta = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    return httpx.get(meta["jwks_uri"], timeout=5).json()
