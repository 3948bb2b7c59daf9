"""The MCP server kit (crates/downstream/examples/mcp_server.rs: rmcp + mcp-sts's kit), trusting oidc-provider,
called by the official Python MCP SDK: its OAuth client finds the protected resource
metadata (RFC 9728), signs in at oidc-provider as the registered MCP client `claude-desktop`
and calls tools with the JWT access token it got. Also the exchange side of the same idea:
an access token issued to `claude-desktop` names the agent behind the MCP server."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlparse

import httpx
import httpx2
import jwt
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
    ProtectedResourceMetadata,
)

from harness import ACCESS_TOKEN, JWT_TYPE
from upstream import OIDC_RESOURCE, follow_login, oidc_login

AGENT = "claude-desktop"  # the MCP client registered at oidc-provider


class MemoryStorage:
    """The SDK's TokenStorage, holding the pre-registered client and the tokens."""

    def __init__(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info, self.tokens = client_info, None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


def _sdk_provider(env, user: str, tokens: OAuthToken | None = None, authorizations: list | None = None):
    """The SDK's OAuth client for the kit, as MCP client `claude-desktop`, holding
    `tokens` from an earlier sign-in when given; every authorization URL it opens is
    appended to `authorizations`."""
    redirect: dict = {}

    async def redirect_handler(url: str) -> None:
        if authorizations is not None:
            authorizations.append(url)
        # The "browser": oidc-provider's login and consent pages, driven over HTTP.
        with httpx.Client(follow_redirects=False, timeout=10) as http:
            redirect.update(follow_login(http, http.get(url), user, env.redirect_uri))

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=redirect["code"], state=redirect.get("state"), iss=redirect.get("iss"))

    storage = MemoryStorage(OAuthClientInformationFull(client_id=AGENT, redirect_uris=[env.redirect_uri],
                                                       token_endpoint_auth_method="none",
                                                       grant_types=["authorization_code"]))
    storage.tokens = tokens
    return OAuthClientProvider(
        server_url=env.kit_url,
        client_metadata=OAuthClientMetadata(redirect_uris=[env.redirect_uri], token_endpoint_auth_method="none",
                                            grant_types=["authorization_code"], client_name=AGENT),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


async def _sdk_session(env, user: str) -> dict:
    """Connect with no token and let the SDK's OAuth client do the rest: 401 -> RFC 9728
    discovery -> authorization server metadata -> auth code + PKCE with `resource`."""
    provider = _sdk_provider(env, user)
    requested: list[str] = []

    async def record(request):
        requested.append(str(request.url))

    async with httpx2.AsyncClient(auth=provider, event_hooks={"request": [record]}, timeout=20) as http:
        async with Client(streamable_http_client(env.kit_url, http_client=http)) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            whoami = await client.call_tool("whoami", {})
    return {
        "tools": tools,
        "whoami": whoami,
        "prm": provider.context.protected_resource_metadata,
        "token": provider.context.current_tokens.access_token,
        "requested": requested,
    }


async def _step_up(env, user: str, token: str) -> dict:
    """Start from a token holding notes:read only and call add_note through the SDK's
    OAuth client: the kit's 403 insufficient_scope challenge makes it re-authorize with
    the union of what it holds and what the challenge names, then retry the call."""
    authorizations: list[str] = []
    provider = _sdk_provider(env, user, OAuthToken(access_token=token, token_type="Bearer", scope="notes:read"),
                             authorizations)
    challenges: list[tuple[int, str]] = []

    async def record(response):
        if response.status_code in (401, 403):
            challenges.append((response.status_code, response.headers.get("www-authenticate", "")))

    async with httpx2.AsyncClient(auth=provider, event_hooks={"response": [record]}, timeout=20) as http:
        async with Client(streamable_http_client(env.kit_url, http_client=http)) as client:
            before = sorted(t.name for t in (await client.list_tools()).tools)
            added = await client.call_tool("add_note", {"text": "stepped up"})
            after = sorted(t.name for t in (await client.list_tools()).tools)
    return {"before": before, "added": added, "after": after, "challenges": challenges,
            "authorizations": authorizations, "token": provider.context.current_tokens}


async def _with_token(url: str, token: str, calls: list[tuple[str, dict]]):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=15) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            results = [await client.call_tool(name, args) for name, args in calls]
    return tools, results


def run_async(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))


def run(env, results) -> None:
    url, sts = env.kit_url, env.sts
    prm_url = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")

    def sdk_oauth_flow():
        got = run_async(_sdk_session(env, "alice"))
        assert str(got["prm"].resource) == url, got["prm"]
        assert [str(a).rstrip("/") for a in got["prm"].authorization_servers] == [env.oidc_issuer], got["prm"]
        assert prm_url in got["requested"], f"metadata not found through the challenge: {got['requested']}"
        claims = jwt.decode(got["token"], options={"verify_signature": False})
        assert claims["aud"] == url and claims["client_id"] == AGENT, claims
        assert got["tools"] == ["add_note", "list_notes", "whoami"], got["tools"]
        text = got["whoami"].content[0].text
        seen = json.loads(text)
        assert seen["caller"]["user"] == "alice" and seen["caller"]["agent"] == AGENT, seen
        assert seen["caller"]["client"] == sts.CLIENT_ID and seen["caller"]["issuer"] == env.oidc_issuer, seen
        assert seen["caller"]["scopes"] == ["notes:read", "notes:write"], seen
        assert seen["authorization_header_seen"] is False, seen
        assert got["token"] not in text and got["token"].split(".")[2] not in text, "the raw token reached a tool"

    results.check("kit + Python MCP SDK OAuth client: 401 -> RFC 9728 metadata -> oidc-provider login as MCP client "
                  "claude-desktop -> tools see user alice and agent claude-desktop, never the token", sdk_oauth_flow)

    def filtered_by_scope():
        token = oidc_login(env.oidc_issuer, "bob", None, env.redirect_uri, client_id=AGENT, resource=url,
                           scope="notes:read")["access_token"]
        tools, _ = run_async(_with_token(url, token, []))
        assert tools == ["list_notes", "whoami"], tools
        # A client of MCP 2026-07-28 names the call in Mcp-Method/Mcp-Name; the kit answers
        # before the tool runs, naming only the scope add_note needs (SEP-2350).
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_note", "arguments": {}}}
        refused = httpx2.post(url, json=call, timeout=5, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "Mcp-Method": "tools/call", "Mcp-Name": "add_note"})
        assert refused.status_code == 403, refused.status_code
        assert refused.headers["www-authenticate"] == \
            f'Bearer error="insufficient_scope", scope="notes:write", resource_metadata="{prm_url}"', refused.headers

    results.check("kit: a token with notes:read only lists list_notes and whoami; add_note gets 403 "
                  "insufficient_scope naming notes:write", filtered_by_scope)

    def step_up():
        token = oidc_login(env.oidc_issuer, "alice", None, env.redirect_uri, client_id=AGENT, resource=url,
                           scope="notes:read")["access_token"]
        got = run_async(_step_up(env, "alice", token))
        assert got["before"] == ["list_notes", "whoami"], got["before"]
        assert got["challenges"] == [(403, f'Bearer error="insufficient_scope", scope="notes:write", '
                                           f'resource_metadata="{prm_url}"')], got["challenges"]
        (authorization,) = got["authorizations"]
        asked = parse_qs(urlparse(authorization).query)
        assert asked["scope"] == ["notes:read notes:write"], asked
        assert asked["resource"] == [url], asked
        # The retried call reached the tool (here it has no notes API to write to, so its
        # own answer may be a downstream error); no scope refusal is left.
        assert "insufficient_scope" not in got["added"].model_dump_json(), got["added"]
        assert got["after"] == ["add_note", "list_notes", "whoami"], got["after"]
        claims = jwt.decode(got["token"].access_token, options={"verify_signature": False})
        assert set(claims["scope"].split()) >= {"notes:read", "notes:write"}, claims

    results.check("kit + Python MCP SDK OAuth client: add_note with a notes:read token -> 403 insufficient_scope "
                  "-> the SDK re-authorizes at oidc-provider with notes:read notes:write -> the retried call reaches the tool",
                  step_up)

    def challenges():
        none = httpx2.post(url, json={}, timeout=5)
        assert none.status_code == 401, none.status_code
        # Two challenges (RFC 9110 §11.6.1): Bearer, and DPoP with the accepted algorithms.
        offered = none.headers.get_list("www-authenticate")
        assert offered[0] == f'Bearer resource_metadata="{prm_url}"', offered
        assert offered[1].startswith('DPoP algs="ES256') and offered[1].endswith(f'resource_metadata="{prm_url}"'), offered
        assert extract_resource_metadata_from_www_auth(none) == prm_url
        # alice's oidc-provider token for mcp-sts: a real token, for another resource.
        other = httpx2.post(url, json={}, headers={"Authorization": f"Bearer {env.upstream['alice']['access_token']}"},
                            timeout=5)
        assert other.status_code == 401, other.status_code
        challenge = other.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token"') and "audience" in challenge, challenge
        assert extract_resource_metadata_from_www_auth(other) == prm_url, challenge

    results.check("kit: no token and a token for another resource get 401 with the resource_metadata challenge",
                  challenges)

    def metadata_discovery():
        urls = build_protected_resource_metadata_discovery_urls(None, url)
        assert urls == [prm_url, url.replace("/mcp", "/.well-known/oauth-protected-resource")], urls
        for candidate in urls:
            response = httpx2.get(candidate, timeout=5)
            assert response.status_code == 200, (candidate, response.status_code)
            prm = ProtectedResourceMetadata.model_validate_json(response.content)
            assert str(prm.resource) == url and prm.scopes_supported == ["notes:read", "notes:write"], prm
            assert prm.bearer_methods_supported == ["header"], prm

    results.check("kit: protected resource metadata at the path-suffixed and root well-known URIs parses as the SDK's "
                  "ProtectedResourceMetadata", metadata_discovery)

    agent_login = {}

    def agent_token() -> str:
        if "token" not in agent_login:
            agent_login["token"] = oidc_login(env.oidc_issuer, "alice", None, env.redirect_uri, client_id=AGENT,
                                              resource=OIDC_RESOURCE, scope="openid roles orders")["access_token"]
        return agent_login["token"]

    def agent_from_client_id():
        token = agent_token()
        assert jwt.decode(token, options={"verify_signature": False})["client_id"] == AGENT
        claims = jwt.decode(sts.mint(token, ACCESS_TOKEN, audience="orders-api"), options={"verify_signature": False})
        assert claims["sub"] == "alice", claims
        assert claims["act"] == {
            "sub": sts.CLIENT_ID,
            "sub_profile": "service",
            "act": {"sub": AGENT, "iss": env.oidc_issuer, "sub_profile": "ai_agent"},
        }, claims["act"]

    results.check("oidc-provider access token issued to MCP client claude-desktop, no actor_token: act names the "
                  "agent behind the MCP server", agent_from_client_id)

    def actor_token_wins():
        bot = env.teleport.sign("ES256", "bot-claude", ["bot"])
        minted = sts.mint(agent_token(), ACCESS_TOKEN, audience="orders-api", actor_token=bot, actor_token_type=JWT_TYPE)
        claims = jwt.decode(minted, options={"verify_signature": False})
        assert claims["act"] == {"sub": "bot-claude", "iss": env.teleport.CLUSTER, "sub_profile": "ai_agent"}, claims["act"]

    results.check("the same token with an actor_token: the actor token wins, act is the bot alone", actor_token_wins)
