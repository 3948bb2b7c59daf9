"""An independent URL client (client ID metadata document), written with joserfc: its
`client_id` is the URL of the document it serves over HTTP on loopback, the document
publishes its own P-256 key (`jwks`), and it authenticates with RFC 7523
`private_key_jwt` assertions it signs itself. mcp-sts allows its host in `[[cimd.allow]]`."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import ECKey

DOCUMENT_PATH = "/agents/interop-planner"


class UrlClient:
    def __init__(self) -> None:
        self.kid = "url-client-1"
        self.key = ECKey.generate_key("P-256", parameters={"kid": self.kid, "alg": "ES256"})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.client_id = f"http://127.0.0.1:{self.server.server_address[1]}{DOCUMENT_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def document(self) -> dict:
        return {
            "client_id": self.client_id,
            "client_name": "Interop planner agent",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [self.key.as_dict(private=False)]},
        }

    def _handler(self):
        client = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path != DOCUMENT_PATH:
                    self.send_error(404)
                    return
                body = json.dumps(client.document()).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("cache-control", "max-age=300")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def assertion(self, audience: str, key: ECKey | None = None) -> str:
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": audience,
                  "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
        return jwt.encode({"alg": "ES256", "kid": self.kid, "typ": "JWT"}, claims, key or self.key)

    def toml(self) -> str:
        return """
[[cimd.allow]]
host = "127.0.0.1"
audiences = ["orders-api"]
"""

    def close(self) -> None:
        self.server.shutdown()
