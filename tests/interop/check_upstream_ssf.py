"""Shared Signals upstream: the Teleport-shaped IdP runs an independent transmitter
(ssf_transmitter.py: the standard library's HTTP server and PyJWT). mcp-sts, as its
receiver, creates a poll stream there on its own; the IdP then emits a CAEP
session-revoked SET for one session and a RISC account-disabled SET for one user, and
mcp-sts refuses exchanges for exactly those (400 invalid_request, the revoked rule
named), acknowledging each SET. A SET with the right kid signed by a foreign key is
reported back in setErrs (invalid_key) and not applied; a replayed SET changes nothing."""

from __future__ import annotations

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from harness import JWT_TYPE, error_of
from ssf_transmitter import ACCOUNT_DISABLED, CREDENTIAL_CHANGE, POLL, SESSION_REVOKED


def run(env, results) -> None:
    sts, tp = env.sts, env.teleport
    ssf = tp.ssf
    key, kid = tp.keys["ES256"]

    def token(user: str, sid: str) -> str:
        return tp.sign("ES256", user, ["developer"], sid=sid)

    def exchange(subject: str) -> tuple[int, str | None, str]:
        r = sts.exchange(subject, JWT_TYPE, audience="orders-api")
        description = r.json().get("error_description", "") if r.status_code != 200 else ""
        return (*error_of(r), description)

    def stream_created():
        stream = ssf.wait_stream()
        assert stream["delivery"]["method"] == POLL, stream
        assert set(stream["events_requested"]) == {SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED}, stream
        assert ssf.unauthorized == 0, "mcp-sts called without the configured Basic credentials"

    results.check("SSF upstream transmitter (Python): mcp-sts creates its poll stream with Basic credentials, asking for session-revoked, credential-change, account-disabled", stream_created)

    def session_revoked():
        revoked, other = token("tp-dana@example.com", "tp-session-1"), token("tp-dana@example.com", "tp-session-2")
        assert exchange(revoked)[:2] == (200, None) and exchange(other)[:2] == (200, None)
        jti, set_ = ssf.sign(SESSION_REVOKED, {"format": "opaque", "id": "tp-session-1"}, key, kid)
        ssf.emit(jti, set_)
        assert ssf.wait_verdict(jti) is None, f"refused: {ssf.refused.get(jti)}"
        status, error, description = exchange(revoked)
        assert (status, error) == (400, "invalid_request"), (status, error)
        assert "session has been revoked" in description, description
        assert exchange(other)[:2] == (200, None), "only the named session is revoked"

    results.check("SSF upstream: CAEP session-revoked (opaque sid) acknowledged; that session's exchange -> 400 invalid_request, another session of the user still 200", session_revoked)

    def account_disabled():
        user = "tp-erin@example.com"
        assert exchange(token(user, "tp-erin-1"))[:2] == (200, None)
        jti, set_ = ssf.sign(ACCOUNT_DISABLED, {"format": "iss_sub", "iss": tp.CLUSTER, "sub": user}, key, kid)
        ssf.emit(jti, set_)
        assert ssf.wait_verdict(jti) is None, f"refused: {ssf.refused.get(jti)}"
        for sid in ("tp-erin-1", "tp-erin-2"):
            status, error, description = exchange(token(user, sid))
            assert (status, error) == (400, "invalid_request"), (status, error)
            assert "subject or an actor has been revoked" in description, description
        # The revocation reached mcp-sts's own receivers' view too: the admin list.
        listed = httpx.get(f"{sts.url}/admin/revocations", timeout=5,
                           headers={"authorization": f"Bearer {sts.admin_token}"}).json()["revocations"]
        assert [e["kind"] for e in listed if e["value"] == user] == ["subject"], listed
        # The same SET once more: acknowledged, applied once (still one entry).
        with ssf.lock:
            ssf.acked.discard(jti)
        ssf.emit(jti, set_)
        assert ssf.wait_verdict(jti) is None
        listed = httpx.get(f"{sts.url}/admin/revocations", timeout=5,
                           headers={"authorization": f"Bearer {sts.admin_token}"}).json()["revocations"]
        assert len([e for e in listed if e["value"] == user]) == 1, listed

    results.check("SSF upstream: RISC account-disabled (iss_sub) acknowledged; every exchange for that user -> 400 invalid_request; a replay is acknowledged and applied once", account_disabled)

    def forged_not_applied():
        user = "tp-frank@example.com"
        forger = ec.generate_private_key(ec.SECP256R1())
        jti, forged = ssf.sign(ACCOUNT_DISABLED, {"format": "iss_sub", "iss": tp.CLUSTER, "sub": user}, forger, kid)
        ssf.emit(jti, forged)
        err = ssf.wait_verdict(jti)
        assert err is not None and err.get("err") == "invalid_key", err
        assert exchange(token(user, "tp-frank-1"))[:2] == (200, None), "a forged SET must not revoke"
        # Right key, wrong audience: refused too.
        jti, misaddressed = ssf.sign(ACCOUNT_DISABLED, {"format": "iss_sub", "iss": tp.CLUSTER, "sub": user},
                                     key, kid, aud="https://someone-else.example.com")
        ssf.emit(jti, misaddressed)
        err = ssf.wait_verdict(jti)
        assert err is not None and err.get("err") == "invalid_request", err
        assert exchange(token(user, "tp-frank-2"))[:2] == (200, None), "a SET for another audience must not revoke"

    results.check("SSF upstream: a SET signed by a foreign key under the IdP's kid -> setErrs invalid_key, one for another aud -> invalid_request; neither applied (exchange still 200)", forged_not_applied)
