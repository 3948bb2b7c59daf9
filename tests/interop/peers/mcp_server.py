"""An MCP server built with the official `mcp` Python SDK (MCPServer, formerly FastMCP),
streamable HTTP transport, protected by the SDK's auth with a TokenVerifier that checks
mcp-sts tokens against its JWKS.

Usage: python mcp_server.py <port> <sts_issuer> <audience> <required_scope>
"""

from __future__ import annotations

import sys

import jwt
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

port, issuer, audience, required_scope = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
resource_url = f"http://127.0.0.1:{port}/mcp"


class StsTokenVerifier:
    """Accepts only ES256 `at+jwt` tokens minted by mcp-sts for this server."""

    def __init__(self) -> None:
        self.jwks = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", cache_keys=True)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            if jwt.get_unverified_header(token).get("typ") not in ("at+jwt", "application/at+jwt"):
                return None
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["ES256", "RS256"],
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except Exception as error:  # noqa: BLE001 - any failure means "not a valid token"
            print(f"token refused: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            return None
        return AccessToken(
            token=token,
            client_id=claims.get("client_id", ""),
            scopes=claims.get("scope", "").split(),
            expires_at=claims["exp"],
            resource=claims["aud"] if isinstance(claims["aud"], str) else None,
            subject=claims["sub"],
            claims=claims,
        )


server = MCPServer(
    "interop-python",
    token_verifier=StsTokenVerifier(),
    auth=AuthSettings(
        issuer_url=issuer,
        resource_server_url=resource_url,
        required_scopes=[required_scope],
        validate_token_resource=False,
    ),
)


@server.tool()
def whoami() -> dict:
    """The caller's execution identity, from the verified mcp-sts token."""
    token = get_access_token()
    claims = (token.claims or {}) if token else {}
    return {
        "sub": claims.get("sub"),
        "act": claims.get("act"),
        "scope": claims.get("scope"),
        "client_id": claims.get("client_id"),
        "delegation_mode": claims.get("delegation_mode"),
        "server": "python-mcp",
    }


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=int(port), streamable_http_path="/mcp")
