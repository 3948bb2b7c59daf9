"""A URL client (client ID metadata document) from an independent implementation
(url_client.py, joserfc): it authenticates with private_key_jwt against the keys its own
document publishes, and nothing else stands in for a registration."""

from __future__ import annotations

import httpx
import jwt
from joserfc.jwk import ECKey

from harness import ACCESS_TOKEN, TOKEN_EXCHANGE

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def run(env, results) -> None:
    sts, client = env.sts, env.url_client
    alice = env.upstream["alice"]["access_token"]

    def exchange(assertion: str) -> httpx.Response:
        form = {"grant_type": TOKEN_EXCHANGE, "subject_token": alice, "subject_token_type": ACCESS_TOKEN,
                "audience": "orders-api", "client_id": client.client_id,
                "client_assertion_type": JWT_BEARER, "client_assertion": assertion}
        return httpx.post(f"{sts.url}/token", data=form, timeout=10)

    def metadata():
        doc = httpx.get(f"{sts.url}/.well-known/oauth-authorization-server", timeout=5).json()
        assert doc["client_id_metadata_document_supported"] is True, doc

    results.check("metadata advertises client_id_metadata_document_supported", metadata)

    def authenticates():
        r = exchange(client.assertion(sts.url))
        assert r.status_code == 200, r.text
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == client.client_id, claims
        # The calling URL client is the outermost actor (alice's token may name an earlier agent).
        assert claims["act"]["sub"] == client.client_id, claims
        assert claims["act"]["sub_profile"] == "ai_agent" and "iss" not in claims["act"], claims

    results.check("joserfc URL client (private_key_jwt, keys from its document): client_id is the URL, ai_agent",
                  authenticates)

    def foreign_key():
        stranger = ECKey.generate_key("P-256", parameters={"kid": client.kid, "alg": "ES256"})
        r = exchange(client.assertion(sts.url, key=stranger))
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text

    results.check("joserfc URL client signing with a key its document does not publish: invalid_client",
                  foreign_key)
