"""An upstream IdP's Shared Signals transmitter, written independently of mcp-sts with
the standard library's HTTP server and PyJWT: SSF 1.0 metadata, stream creation and
listing (HTTP Basic), and RFC 8936 poll delivery of SETs (RFC 8417) it signs with the
IdP's own keys. It records what the receiver acknowledged and what it refused
(`setErrs`), so a check can wait for mcp-sts's verdict on each SET."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

POLL = "urn:ietf:rfc:8936"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"


class UpstreamTransmitter:
    """One issuer's transmitter on a free loopback port. `receiver` is the (client_id,
    secret) the receiver authenticates with; `audience` is the `aud` of every SET."""

    def __init__(self, issuer: str, receiver: tuple[str, str], audience: str | None = None) -> None:
        self.issuer = issuer
        self.audience = audience
        self.expected_auth = "Basic " + base64.b64encode(f"{receiver[0]}:{receiver[1]}".encode()).decode()
        self.lock = threading.Condition()
        self.streams: dict[str, dict] = {}
        self.queue: dict[str, str] = {}  # jti -> SET, until acknowledged or refused
        self.acked: set[str] = set()
        self.refused: dict[str, dict] = {}  # jti -> the receiver's setErrs entry
        self.unauthorized = 0
        transmitter = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body=None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if self.headers.get("authorization") == transmitter.expected_auth:
                    return True
                with transmitter.lock:
                    transmitter.unauthorized += 1
                self._reply(401, {"error": "invalid_client"})
                return False

            def _body(self) -> dict:
                length = int(self.headers.get("content-length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_GET(self):  # noqa: N802
                if self.path == "/.well-known/ssf-configuration":
                    self._reply(200, transmitter.metadata())
                elif self.path == "/streams":
                    if self._authorized():
                        with transmitter.lock:
                            self._reply(200, list(transmitter.streams.values()))
                else:
                    self._reply(404, {"error": "not_found"})

            def do_POST(self):  # noqa: N802
                if not self._authorized():
                    return
                if self.path == "/streams":
                    self._reply(201, transmitter.create(self._body()))
                elif self.path.startswith("/poll/") and self.path[len("/poll/"):] in transmitter.streams:
                    self._reply(200, transmitter.poll(self._body()))
                else:
                    self._reply(404, {"error": "not_found"})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.configuration_url = f"{self.base}/.well-known/ssf-configuration"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def metadata(self) -> dict:
        return {
            "spec_version": "1_0",
            "issuer": self.issuer,
            "delivery_methods_supported": [POLL],
            "configuration_endpoint": f"{self.base}/streams",
        }

    def create(self, request: dict) -> dict:
        stream_id = secrets.token_hex(8)
        stream = {
            "stream_id": stream_id,
            "iss": self.issuer,
            "aud": self.audience,
            "delivery": {"method": POLL, "endpoint_url": f"{self.base}/poll/{stream_id}"},
            "events_supported": [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED],
            "events_requested": request.get("events_requested", []),
            "events_delivered": [e for e in request.get("events_requested", [])
                                 if e in (SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED)],
            "description": request.get("description"),
        }
        with self.lock:
            self.streams[stream_id] = stream
            self.lock.notify_all()
        return stream

    def poll(self, request: dict) -> dict:
        """RFC 8936 §2.4: apply `ack` and `setErrs`, then hand out what is still queued."""
        with self.lock:
            for jti in request.get("ack", []):
                if self.queue.pop(jti, None) is not None:
                    self.acked.add(jti)
            for jti, err in (request.get("setErrs") or {}).items():
                if self.queue.pop(jti, None) is not None:
                    self.refused[jti] = err
            self.lock.notify_all()
            limit = int(request.get("maxEvents", 100))
            pending = list(self.queue.items())
            return {"sets": dict(pending[:limit]), "moreAvailable": len(pending) > limit}

    def sign(self, event: str, sub_id: dict, key, kid: str, alg: str = "ES256", **claims) -> tuple[str, str]:
        """A SET (RFC 8417, SSF 1.0 shape: `sub_id` at the top level, one event)."""
        jti = secrets.token_hex(12)
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "jti": jti, "iat": now, "sub_id": sub_id,
                "events": {event: {"event_timestamp": now, "initiating_entity": "admin"}}}
        body.update(claims)
        return jti, jwt.encode(body, key, algorithm=alg, headers={"kid": kid, "typ": "secevent+jwt"})

    def emit(self, jti: str, token: str) -> None:
        with self.lock:
            self.queue[jti] = token

    def wait_stream(self, timeout: float = 20.0) -> dict:
        with self.lock:
            if not self.lock.wait_for(lambda: self.streams, timeout):
                raise AssertionError(f"no stream created within {timeout}s")
            return next(iter(self.streams.values()))

    def wait_verdict(self, jti: str, timeout: float = 20.0) -> dict | None:
        """None once the receiver acknowledged `jti`; its setErrs entry if it refused it."""
        with self.lock:
            if not self.lock.wait_for(lambda: jti in self.acked or jti in self.refused, timeout):
                raise AssertionError(f"SET {jti} neither acknowledged nor refused within {timeout}s")
            return self.refused.get(jti)

    def close(self) -> None:
        self.server.shutdown()
