"""Verifiers: PyJWT (PyJWKClient), node jose (createRemoteJWKSet + jwtVerify) and joserfc
verify minted tokens against the mcp-sts JWKS, check the audience, and keep working
across `mcp-sts keys rotate`. Each verifier instance is created once and reused, so the
rotation is seen through its own JWKS cache."""

from __future__ import annotations

import re
import time

import httpx
import jwt
from joserfc import errors as jose_errors
from joserfc import jwt as jfc_jwt
from joserfc.jwk import KeySet

from harness import ACCESS_TOKEN, ID_TOKEN


class PyJwtVerifier:
    name = "PyJWT"

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        # PyJWKClient refetches on an unknown kid only after `cooldown_duration` (30 s by
        # default); shortened so a rotation is seen within the suite's time budget.
        self.jwks = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", cooldown_duration=1)

    def verify(self, token: str, audience: str) -> dict:
        assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
        key = self.jwks.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["ES256"], audience=audience, issuer=self.issuer,
                          options={"require": ["exp", "iat", "sub", "jti"]})

    @staticmethod
    def is_audience_error(error: Exception) -> bool:
        return isinstance(error, jwt.InvalidAudienceError)


class JoserfcVerifier:
    """joserfc has no JWKS client; the JWKS is fetched with httpx and fetched again on an unknown kid."""

    name = "joserfc"

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.keys = KeySet([])

    def _fetch(self) -> None:
        self.keys = KeySet.import_key_set(httpx.get(f"{self.issuer}/.well-known/jwks.json", timeout=5).json())

    def _resolve(self, obj) -> KeySet:
        kid = obj.headers().get("kid")
        if not any(k.kid == kid for k in self.keys.keys):
            self._fetch()
        return self.keys

    def verify(self, token: str, audience: str) -> dict:
        decoded = jfc_jwt.decode(token, self._resolve, algorithms=["ES256"])
        assert decoded.header["typ"] == "at+jwt", decoded.header
        jfc_jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(decoded.claims)
        return decoded.claims

    @staticmethod
    def is_audience_error(error: Exception) -> bool:
        return isinstance(error, jose_errors.InvalidClaimError) and error.claim == "aud"


class JoseVerifier:
    name = "jose (node)"

    def __init__(self, issuer: str, node) -> None:
        self.issuer, self.node = issuer, node

    def verify(self, token: str, audience: str) -> dict:
        r = self.node.call(op="verify", issuer=self.issuer, audience=audience, token=token)
        if not r["ok"]:
            raise JoseError(r)
        assert r["header"]["typ"] == "at+jwt", r["header"]
        return r["payload"]

    @staticmethod
    def is_audience_error(error: Exception) -> bool:
        return isinstance(error, JoseError) and error.reply.get("code") == "ERR_JWT_CLAIM_VALIDATION_FAILED" \
            and error.reply.get("claim") == "aud"


class JoseError(Exception):
    def __init__(self, reply: dict) -> None:
        super().__init__(f"{reply.get('code')}: {reply.get('message')}")
        self.reply = reply


def run(env, results) -> None:
    sts = env.sts
    alice_id = env.upstream["alice"]["id_token"]
    verifiers = [PyJwtVerifier(sts.url), JoseVerifier(sts.url, env.node), JoserfcVerifier(sts.url)]
    before = sts.mint(alice_id, ID_TOKEN, audience="orders-api")
    first_fetch = time.monotonic()

    for v in verifiers:
        def accept_and_refuse(v=v):
            c = v.verify(before, "orders-api")
            assert c["sub"] == "alice" and c["aud"] == "orders-api", c
            try:
                v.verify(before, "other-api")
            except Exception as error:  # noqa: BLE001
                assert v.is_audience_error(error), f"wrong error for a wrong audience: {error!r}"
            else:
                raise AssertionError("token accepted for the wrong audience")

        results.check(f"{v.name}: verifies a minted token against the JWKS (iss, aud, typ at+jwt, ES256), refuses another aud", accept_and_refuse)

    state = {}

    def rotate():
        old_kids = sts.jwks_kids()
        old_kid = jwt.get_unverified_header(before)["kid"]
        assert old_kid in old_kids, (old_kid, old_kids)
        out = sts.rotate()
        match = re.search(r"new (?:signing key|ES256 key|RS256 key) (\S+)", out)
        assert match, out
        new_kid = match.group(1)
        deadline = time.monotonic() + 15
        while new_kid not in (kids := sts.jwks_kids()):
            assert time.monotonic() < deadline, f"new kid {new_kid} never published: {kids}"
            time.sleep(0.2)
        assert old_kid in kids, f"old kid {old_kid} dropped from JWKS {kids}"
        after = sts.mint(env.upstream["bob"]["access_token"], ACCESS_TOKEN, audience="orders-api")
        assert jwt.get_unverified_header(after)["kid"] == new_kid, "token after rotation not signed by the new key"
        state.update(after=after)

    results.check("mcp-sts keys rotate: new kid published within reload_seconds, old kid kept, new tokens signed by the new key", rotate)
    # PyJWT and jose refetch on an unknown kid only after a cooldown (shortened to 1 s here).
    time.sleep(max(0.0, 1.2 - (time.monotonic() - first_fetch)))

    for v in verifiers:
        def across_rotation(v=v):
            assert "after" in state, "rotation did not happen"
            assert v.verify(before, "orders-api")["sub"] == "alice"
            assert v.verify(state["after"], "orders-api")["sub"] == "bob"

        results.check(f"{v.name}: the same verifier instance accepts tokens from before and after the rotation", across_rotation)
