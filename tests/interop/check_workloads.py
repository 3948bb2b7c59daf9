"""Workload identities from an independent SPIFFE trust domain (spiffe_domain.py, joserfc):
a JWT-SVID as the actor of an exchange, and as the client's own credential (jwt-spiffe)."""

from __future__ import annotations

import httpx
import jwt

from harness import ACCESS_TOKEN, JWT_TYPE, TOKEN_EXCHANGE
from spiffe_domain import TRUST_DOMAIN

AGENT = f"spiffe://{TRUST_DOMAIN}/agents/planner"
TOOL = f"spiffe://{TRUST_DOMAIN}/tools/indexer"
JWT_SPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"


def run(env, results) -> None:
    sts, domain = env.sts, env.spiffe
    alice = env.upstream["alice"]["access_token"]

    def svid_actor():
        minted = sts.mint(alice, ACCESS_TOKEN, audience="orders-api",
                          actor_token=domain.svid(AGENT, sts.url), actor_token_type=JWT_TYPE)
        claims = jwt.decode(minted, options={"verify_signature": False})
        assert claims["act"] == {"sub": AGENT, "iss": f"spiffe://{TRUST_DOMAIN}", "sub_profile": "ai_agent"}, claims

    results.check("joserfc JWT-SVID as actor_token: act names the SPIFFE ID, its trust domain and ai_agent",
                  svid_actor)

    def svid_for_another_audience():
        r = sts.exchange(alice, ACCESS_TOKEN, audience="orders-api",
                         actor_token=domain.svid(AGENT, "https://elsewhere.example"), actor_token_type=JWT_TYPE)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text

    results.check("joserfc JWT-SVID for another audience: invalid_request", svid_for_another_audience)

    def svid_client():
        form = {"grant_type": TOKEN_EXCHANGE, "subject_token": alice, "subject_token_type": ACCESS_TOKEN,
                "audience": "orders-api", "client_assertion_type": JWT_SPIFFE,
                "client_assertion": domain.svid(TOOL, sts.url)}
        r = httpx.post(f"{sts.url}/token", data=form, timeout=10)
        assert r.status_code == 200, r.text
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == TOOL, claims

    results.check("joserfc JWT-SVID as client authentication (jwt-spiffe): client_id is the SPIFFE ID", svid_client)
