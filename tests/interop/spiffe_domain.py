"""An independent SPIFFE trust domain, written with joserfc: its own P-256 key published
as a SPIFFE bundle (keys with `use` = `jwt-svid`, a `spiffe_refresh_hint`) over HTTP, and
JWT-SVIDs in SPIRE's shape (`sub` a SPIFFE ID, `aud` a list, `exp`, `iat`; `kid`, ES256,
`typ` JWT). mcp-sts trusts it as `kind = "spiffe"`."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import ECKey

from upstream import serve_jwks

TRUST_DOMAIN = "interop.example"


class SpiffeDomain:
    def __init__(self) -> None:
        self.kid = "spire-jwt-1"
        self.key = ECKey.generate_key("P-256", parameters={"kid": self.kid, "alg": "ES256"})
        public = self.key.as_dict(private=False)
        public["use"] = "jwt-svid"
        self.server, self.bundle_endpoint = serve_jwks(
            {"keys": [public], "spiffe_sequence": 1, "spiffe_refresh_hint": 300}
        )

    def svid(self, spiffe_id: str, audience: str, ttl: int = 300) -> str:
        now = int(time.time())
        claims = {"sub": spiffe_id, "aud": [audience], "iat": now, "exp": now + ttl}
        return jwt.encode({"alg": "ES256", "kid": self.kid, "typ": "JWT"}, claims, self.key)

    def toml(self) -> str:
        return f"""
[[issuers]]
kind = "spiffe"
trust_domain = "{TRUST_DOMAIN}"
bundle_endpoint = "{self.bundle_endpoint}"

[[workloads]]
pattern = "spiffe://{TRUST_DOMAIN}/agents/*"
actor = true

[[workloads]]
pattern = "spiffe://{TRUST_DOMAIN}/tools/*"
client = {{ audiences = ["orders-api"] }}
"""

    def close(self) -> None:
        self.server.shutdown()
