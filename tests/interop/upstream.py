"""Upstream identity: a real OIDC login at oidc-provider, and a Teleport-shaped issuer."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ssf_transmitter import UpstreamTransmitter

OIDC_CLIENT_ID = "mcp-sts"  # also the audience of both token kinds
OIDC_RESOURCE = "urn:mcp-sts"


def follow_login(http: httpx.Client, response: httpx.Response, user: str, redirect_uri: str) -> dict:
    """Drive oidc-provider's interaction pages (devInteractions: login form, then consent
    form) from the authorization endpoint's first response until it redirects to
    `redirect_uri`. Returns the redirect's query parameters (code, state, iss)."""
    for _ in range(12):
        if response.status_code not in (302, 303):
            raise RuntimeError(f"login stopped at HTTP {response.status_code}: {response.text[:300]}")
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(redirect_uri):
            query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
            if "error" in query:
                raise RuntimeError(f"authorization error: {query}")
            return query
        if urlparse(location).path.startswith("/interaction/"):
            page = http.get(location)
            assert page.status_code == 200, page.status_code
            prompt = "login" if 'name="login"' in page.text else "consent"
            form = {"prompt": prompt}
            if prompt == "login":
                form.update(login=user, password="any")
            response = http.post(location, data=form)
        else:
            response = http.get(location)
    raise RuntimeError("no authorization code after the interaction")


def oidc_login(issuer: str, user: str, client_secret: str | None, redirect_uri: str, *,
               client_id: str = OIDC_CLIENT_ID, resource: str = OIDC_RESOURCE,
               scope: str = "openid email roles orders") -> dict:
    """Authorization code + PKCE through oidc-provider's interaction pages, driven over
    HTTP with a cookie jar, as `client_id` (confidential with `client_secret`, else a
    public client). Returns the token endpoint response (access_token, id_token when
    `openid` was asked for)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        meta = http.get(f"{issuer}/.well-known/openid-configuration").json()
        params = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "resource": resource,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if "openid" in scope.split():
            params["nonce"] = secrets.token_urlsafe(16)
        query = follow_login(http, http.get(meta["authorization_endpoint"], params=params), user, redirect_uri)
        assert query["state"] == state, "state mismatch"
        form = {
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "resource": resource,
        }
        if client_secret is None:
            form["client_id"] = client_id
            token = http.post(meta["token_endpoint"], data=form)
        else:
            token = http.post(meta["token_endpoint"], auth=(client_id, client_secret), data=form)
        if token.status_code != 200:
            raise RuntimeError(f"token endpoint: {token.status_code} {token.text}")
        return token.json()


def serve_jwks(jwks: dict) -> tuple[ThreadingHTTPServer, str]:
    """Serve `jwks` at /.well-known/jwks.json on a free loopback port, in a thread.
    Returns the server (shut it down when done) and the JWKS URL."""
    body = json.dumps(jwks).encode()

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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"


class TeleportIssuer:
    """A Teleport-shaped issuer: `iss` is a cluster name (not a URL), the JWKS lives at
    /.well-known/jwks.json, the user's roles are in `roles`, and `aud` is an mcp+http URI.
    It signs with its own RS256 and ES256 keys, and runs a Shared Signals transmitter
    (`ssf`) that mcp-sts subscribes to as `SSF_RECEIVER`."""

    CLUSTER = "teleport.example.local"
    AUDIENCE = "mcp+http://mcp-sts"
    SSF_RECEIVER = "mcp-sts"

    def __init__(self) -> None:
        self.keys = {
            "RS256": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "tp-rsa-1"),
            "ES256": (ec.generate_private_key(ec.SECP256R1()), "tp-ec-1"),
        }
        jwks = []
        for alg, (key, kid) in self.keys.items():
            algo = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algo.to_jwk(key.public_key()))
            jwk.update(kid=kid, alg=alg, use="sig")
            jwks.append(jwk)
        self.server, self.jwks_uri = serve_jwks({"keys": jwks})
        self.ssf_secret = secrets.token_hex(16)
        self.ssf = UpstreamTransmitter(self.CLUSTER, (self.SSF_RECEIVER, self.ssf_secret))

    def sign(self, alg: str, user: str, roles: list[str], **extra) -> str:
        key, kid = self.keys[alg]
        now = int(time.time())
        claims = {
            "iss": self.CLUSTER,
            "sub": user,
            "aud": [self.AUDIENCE],
            "username": user,
            "roles": roles,
            "traits": {"logins": [user]},
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": secrets.token_hex(8),
        }
        claims.update(extra)
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})

    def close(self) -> None:
        self.ssf.close()
        self.server.shutdown()
