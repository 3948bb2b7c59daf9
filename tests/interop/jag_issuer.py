"""An independent ID-JAG issuer (draft-ietf-oauth-identity-assertion-authz-grant §3),
written with joserfc: its own P-256 key, its JWKS served over HTTP, grants signed ES256
and typed `oauth-id-jag+jwt`. mcp-sts trusts it for grants only (`accept_id_jag`)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import ECKey

ID_JAG_TYP = "oauth-id-jag+jwt"


class JagIssuer:
    """Serves /.well-known/jwks.json on a free loopback port; its issuer is that URL."""

    def __init__(self) -> None:
        self.kid = "jag-ec-1"
        self.key = ECKey.generate_key("P-256", parameters={"kid": self.kid, "alg": "ES256", "use": "sig"})
        # Same kid, never published: a grant signed with it must fail the signature check.
        self.impostor = ECKey.generate_key("P-256", parameters={"kid": self.kid, "alg": "ES256", "use": "sig"})
        body = json.dumps({"keys": [self.key.as_dict(private=False)]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.jwks_uri = f"{self.issuer}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

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
