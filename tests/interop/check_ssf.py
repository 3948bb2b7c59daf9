"""Shared Signals: an independent receiver written with httpx and joserfc creates a
poll stream at mcp-sts (SSF 1.0), and, after an admin revocation, polls (RFC 8936),
verifies the SET against the mcp-sts JWKS (typ secevent+jwt, iss, aud, one CAEP
session-revoked event with an iss_sub subject), acknowledges it, and sees it gone."""

from __future__ import annotations

import httpx
from joserfc import jwt as jfc_jwt
from joserfc.jwk import KeySet

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
POLL = "urn:ietf:rfc:8936"


def run(env, results) -> None:
    sts = env.sts
    auth = (sts.CLIENT_ID, sts.secret)
    state: dict = {}

    def discover_and_subscribe():
        meta = httpx.get(f"{sts.url}/.well-known/ssf-configuration", timeout=5).json()
        assert meta["issuer"] == sts.url, meta
        assert POLL in meta["delivery_methods_supported"], meta
        body = {"delivery": {"method": POLL}, "events_requested": [SESSION_REVOKED]}
        created = httpx.post(meta["configuration_endpoint"], json=body, auth=auth, timeout=5)
        assert created.status_code == 201, created.text
        stream = created.json()
        assert stream["aud"] == sts.CLIENT_ID and stream["events_delivered"] == [SESSION_REVOKED], stream
        state.update(poll=stream["delivery"]["endpoint_url"], jwks=meta["jwks_uri"])

    results.check("SSF receiver (httpx): reads /.well-known/ssf-configuration, creates a poll stream (201)", discover_and_subscribe)

    def poll_verify_ack():
        assert "poll" in state, "no stream"
        revoked = httpx.post(f"{sts.url}/admin/revocations", timeout=5,
                             headers={"authorization": f"Bearer {sts.admin_token}"},
                             json={"kind": "subject", "value": "carol", "reason": "offboarded",
                                   "issuer": env.oidc_issuer})
        assert revoked.status_code == 201, revoked.text
        answer = httpx.post(state["poll"], json={"returnImmediately": True}, auth=auth, timeout=5).json()
        assert len(answer["sets"]) == 1, answer
        jti, token = next(iter(answer["sets"].items()))
        keys = KeySet.import_key_set(httpx.get(state["jwks"], timeout=5).json())
        decoded = jfc_jwt.decode(token, keys, algorithms=["ES256"])
        assert decoded.header["typ"] == "secevent+jwt", decoded.header
        jfc_jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": sts.url},
            aud={"essential": True, "value": sts.CLIENT_ID},
            jti={"essential": True, "value": jti},
        ).validate(decoded.claims)
        assert list(decoded.claims["events"]) == [SESSION_REVOKED], decoded.claims
        assert decoded.claims["sub_id"] == {"format": "iss_sub", "iss": env.oidc_issuer, "sub": "carol"}, decoded.claims
        again = httpx.post(state["poll"], json={"returnImmediately": True}, auth=auth, timeout=5).json()
        assert jti in again["sets"], "an unacknowledged SET must come again"
        acked = httpx.post(state["poll"], json={"ack": [jti], "returnImmediately": True}, auth=auth, timeout=5).json()
        assert acked["sets"] == {}, acked

    results.check("SSF receiver (joserfc): polls, verifies the SET (secevent+jwt, iss, aud, session-revoked, iss_sub), acks it", poll_verify_ack)
