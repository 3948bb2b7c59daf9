"""DPoP (RFC 9449) with an independent implementation: proofs built with joserfc obtain
bound tokens from mcp-sts, whose binding (cnf.jkt) joserfc's own RFC 7638 thumbprint
and an independent resource-server check (signature from the JWKS, proof key = cnf.jkt,
ath) confirm; broken proofs are refused with invalid_dpop_proof."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import requests
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from harness import ACCESS_TOKEN, TOKEN_EXCHANGE


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def proof(key: ECKey, htm: str, htu: str, *, token: str | None = None, jwk: dict | None = None,
          alg: str = "ES256", iat: int | None = None) -> str:
    claims = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": iat if iat is not None else int(time.time())}
    if token is not None:
        claims["ath"] = b64(hashlib.sha256(token.encode()).digest())
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": jwk if jwk is not None else key.as_dict(private=False)}
    return jwt.encode(header, claims, key)


def run(env, results) -> None:
    sts = env.sts
    token_endpoint = f"{sts.url}/token"
    subject = env.upstream["bob"]["access_token"]
    key = ECKey.generate_key("P-256")

    def exchange(dpop: str | None):
        headers = {"DPoP": dpop} if dpop else {}
        return requests.post(token_endpoint, auth=(sts.CLIENT_ID, sts.secret), headers=headers, timeout=10, data={
            "grant_type": TOKEN_EXCHANGE, "subject_token": subject, "subject_token_type": ACCESS_TOKEN,
            "audience": "orders-api"})

    def metadata():
        meta = requests.get(f"{sts.url}/.well-known/oauth-authorization-server", timeout=10).json()
        algs = meta["dpop_signing_alg_values_supported"]
        assert "ES256" in algs and not any(a == "none" or a.startswith("HS") for a in algs), algs

    results.check("DPoP metadata: dpop_signing_alg_values_supported lists asymmetric algorithms only", metadata)

    bound = {}

    def bind():
        answer = exchange(proof(key, "POST", token_endpoint))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "DPoP", body
        jwks = KeySet.import_key_set(requests.get(f"{sts.url}/.well-known/jwks.json", timeout=10).json())
        claims = jwt.decode(body["access_token"], jwks, algorithms=["ES256", "RS256"]).claims
        assert claims["cnf"] == {"jkt": key.thumbprint()}, (claims.get("cnf"), key.thumbprint())
        bound["token"] = body["access_token"]

    results.check("joserfc proof -> mcp-sts binds the token: token_type DPoP, cnf.jkt = joserfc's RFC 7638 thumbprint", bind)

    def resource_server():
        token = bound["token"]
        api = "https://orders.example.com/api/orders"
        presented = proof(key, "GET", api, token=token)
        # The resource server's side, independently: the token from the JWKS, the proof by
        # its own jwk, that key's thumbprint = cnf.jkt, ath = the token's hash.
        jwks = KeySet.import_key_set(requests.get(f"{sts.url}/.well-known/jwks.json", timeout=10).json())
        claims = jwt.decode(token, jwks, algorithms=["ES256", "RS256"]).claims
        header = json.loads(base64.urlsafe_b64decode(presented.split(".")[0] + "=="))
        proof_key = ECKey.import_key(header["jwk"])
        proved = jwt.decode(presented, proof_key, algorithms=["ES256"]).claims
        assert header["typ"] == "dpop+jwt" and proof_key.thumbprint() == claims["cnf"]["jkt"]
        assert proved["ath"] == b64(hashlib.sha256(token.encode()).digest())
        assert (proved["htm"], proved["htu"]) == ("GET", api)
        seen = requests.post(f"{sts.url}/introspect", auth=(sts.CLIENT_ID, sts.secret), data={"token": token},
                             timeout=10).json()
        assert seen.get("token_type") == "DPoP" and seen.get("cnf") == claims["cnf"], seen

    results.check("independent resource-server check: token signature (JWKS), proof key thumbprint = cnf.jkt, ath; introspection answers cnf", resource_server)

    def refusals():
        other = ECKey.generate_key("P-256")
        replayed = proof(key, "POST", token_endpoint)
        assert exchange(replayed).status_code == 200
        private = key.as_dict(private=True)
        header = b64(json.dumps({"typ": "dpop+jwt", "alg": "none", "jwk": key.as_dict(private=False)}).encode())
        body = b64(json.dumps({"jti": uuid.uuid4().hex, "htm": "POST", "htu": token_endpoint,
                               "iat": int(time.time())}).encode())
        cases = {
            "replayed": replayed,
            "signed by another key than its jwk": proof(other, "POST", token_endpoint, jwk=key.as_dict(private=False)),
            "private key in the jwk": proof(key, "POST", token_endpoint, jwk=private),
            "alg none": f"{header}.{body}.",
            "wrong htm": proof(key, "GET", token_endpoint),
            "wrong htu": proof(key, "POST", f"{sts.url}/introspect"),
            "iat 5 minutes old": proof(key, "POST", token_endpoint, iat=int(time.time()) - 300),
        }
        seen = {name: (r.status_code, r.json().get("error")) for name, r in
                ((name, exchange(p)) for name, p in cases.items())}
        assert all(v == (400, "invalid_dpop_proof") for v in seen.values()), seen

    results.check("mcp-sts refuses joserfc proofs that are replayed, signed by another key, carry a private key, alg none, wrong htm/htu, stale: invalid_dpop_proof", refusals)
