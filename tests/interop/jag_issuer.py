"""An independent ID-JAG issuer (draft-ietf-oauth-identity-assertion-authz-grant §3),
written with joserfc: its own P-256 key, its JWKS served over HTTP, grants signed ES256
and typed `oauth-id-jag+jwt`. mcp-sts trusts it for grants only (`accept_id_jag`)."""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.jwk import ECKey

from upstream import serve_jwks

ID_JAG_TYP = "oauth-id-jag+jwt"


class JagIssuer:
    """Serves /.well-known/jwks.json on a free loopback port; its issuer is that URL."""

    def __init__(self) -> None:
        self.kid = "jag-ec-1"
        self.key = ECKey.generate_key("P-256", parameters={"kid": self.kid, "alg": "ES256", "use": "sig"})
        # Same kid, never published: a grant signed with it must fail the signature check.
        self.impostor = ECKey.generate_key("P-256", parameters={"kid": self.kid, "alg": "ES256", "use": "sig"})
        self.server, self.jwks_uri = serve_jwks({"keys": [self.key.as_dict(private=False)]})
        self.issuer = self.jwks_uri.removesuffix("/.well-known/jwks.json")

    def claims(self, *, sub: str, audience: str, client_id: str, resource: str, scope: str, ttl: int = 300) -> dict:
        now = int(time.time())
        return {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "client_id": client_id,
            "jti": secrets.token_hex(16),
            "iat": now,
            "exp": now + ttl,
            "resource": resource,
            "scope": scope,
        }

    def sign(self, claims: dict, *, typ: str = ID_JAG_TYP, key: ECKey | None = None) -> str:
        header = {"alg": "ES256", "kid": self.kid, "typ": typ}
        return jwt.encode(header, claims, key or self.key)

    def close(self) -> None:
        self.server.shutdown()
