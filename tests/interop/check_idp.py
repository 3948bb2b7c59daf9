"""Upstream issuers: a real oidc-provider login (trusted by discovery) and a
Teleport-shaped issuer (trusted through an explicit jwks_uri), exchanged at mcp-sts."""

from __future__ import annotations

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from harness import ACCESS_TOKEN, ID_TOKEN, JWT_TYPE, error_of

ALL_ORDERS = {"orders:read", "orders:write", "orders:admin"}


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def assert_minted(env, token: str, sub: str, scopes: set[str], actor: str, aud: str = "orders-api") -> dict:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256", header
    c = claims(token)
    assert c["iss"] == env.sts.url, c["iss"]
    assert c["sub"] == sub, c["sub"]
    assert c["aud"] == aud, c["aud"]
    assert set(c["scope"].split()) == scopes, c["scope"]
    assert c["act"]["sub"] == actor, c.get("act")
    assert c["delegation_mode"] == "on_behalf_of", c["delegation_mode"]
    assert c["client_id"] == env.sts.CLIENT_ID
    return c


def run(env, results) -> None:
    sts, up = env.sts, env.upstream

    def login_tokens():
        for user in ("alice", "bob"):
            t = up[user]
            idh, ath = jwt.get_unverified_header(t["id_token"]), jwt.get_unverified_header(t["access_token"])
            assert idh["alg"] == "RS256", idh
            assert ath["alg"] == "ES256" and ath["typ"] == "at+jwt", ath
            idc, atc = claims(t["id_token"]), claims(t["access_token"])
            assert idc["aud"] == "mcp-sts" and atc["aud"] == "mcp-sts", (idc["aud"], atc["aud"])
            assert idc["iss"] == atc["iss"] == env.oidc_issuer
            assert idc["sub"] == atc["sub"] == user
            assert idc["roles"] == atc["roles"] == env.roles[user], (idc.get("roles"), atc.get("roles"))

    results.check("oidc-provider: auth code + PKCE login yields RS256 ID token and ES256 at+jwt access token (aud mcp-sts, roles)", login_tokens)

    def exchange_id_token():
        token = sts.mint(up["alice"]["id_token"], ID_TOKEN, audience="orders-api")
        assert_minted(env, token, "alice", ALL_ORDERS, sts.CLIENT_ID)

    results.check("oidc-provider ID token (discovery-trusted) exchanged as id_token: sub alice, scopes from roles", exchange_id_token)

    def exchange_access_token():
        r = sts.exchange(up["alice"]["access_token"], ACCESS_TOKEN, resource="https://orders.example.com/api", scope="orders:read orders:write")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["issued_token_type"] == ACCESS_TOKEN and body["token_type"].lower() == "bearer", body
        assert_minted(env, body["access_token"], "alice", {"orders:read", "orders:write"}, sts.CLIENT_ID, aud="https://orders.example.com/api")

    results.check("oidc-provider JWT access token exchanged as access_token via resource: aud is the resource URI, scope narrowed", exchange_access_token)

    def developer_is_narrowed():
        token = sts.mint(up["bob"]["access_token"], ACCESS_TOKEN, audience="orders-api")
        assert_minted(env, token, "bob", {"orders:read"}, sts.CLIENT_ID)
        status, error = error_of(sts.exchange(up["bob"]["id_token"], ID_TOKEN, audience="orders-api", scope="orders:write"))
        assert (status, error) == (400, "invalid_scope"), (status, error)

    results.check("oidc-provider roles drive entitlement: developer gets orders:read only, orders:write is invalid_scope", developer_is_narrowed)

    def typ_mismatch():
        status, error = error_of(sts.exchange(up["alice"]["access_token"], ID_TOKEN, audience="orders-api"))
        assert (status, error) == (400, "invalid_request"), (status, error)

    results.check("oidc-provider at+jwt access token declared as id_token is refused (invalid_request)", typ_mismatch)

    tp = env.teleport

    def teleport_rs256():
        token = sts.mint(tp.sign("RS256", "carol@example.com", ["order-admin"]), JWT_TYPE, audience="orders-api")
        assert_minted(env, token, "carol@example.com", ALL_ORDERS, sts.CLIENT_ID)

    results.check("Teleport-shaped issuer (iss cluster name, aud mcp+http://, explicit jwks_uri): RS256 token accepted", teleport_rs256)

    def teleport_es256_with_agent():
        agent = tp.sign("ES256", "bot-claude", ["bot"])
        token = sts.mint(tp.sign("ES256", "dave@example.com", ["developer"]), JWT_TYPE, audience="orders-api",
                         actor_token=agent, actor_token_type=JWT_TYPE)
        c = assert_minted(env, token, "dave@example.com", {"orders:read"}, "bot-claude")
        assert c["act"].get("iss") == tp.CLUSTER, c["act"]

    results.check("Teleport-shaped issuer: ES256 subject + bot actor token -> act.sub bot-claude, act.iss cluster", teleport_es256_with_agent)

    def teleport_wrong_audience():
        bad = tp.sign("RS256", "carol@example.com", ["order-admin"], aud=["mcp+http://someone-else"])
        status, error = error_of(sts.exchange(bad, JWT_TYPE, audience="orders-api"))
        assert (status, error) == (400, "invalid_request"), (status, error)

    results.check("Teleport-shaped issuer: token for another aud is refused (invalid_request)", teleport_wrong_audience)

    def teleport_foreign_key():
        forged = jwt.encode(claims(tp.sign("ES256", "carol@example.com", ["order-admin"])),
                            ec.generate_private_key(ec.SECP256R1()), algorithm="ES256",
                            headers={"kid": "tp-ec-1", "typ": "JWT"})
        status, error = error_of(sts.exchange(forged, JWT_TYPE, audience="orders-api"))
        assert (status, error) == (400, "invalid_request"), (status, error)

    results.check("Teleport-shaped issuer: same claims and kid signed by a foreign key are refused (invalid_request)", teleport_foreign_key)
