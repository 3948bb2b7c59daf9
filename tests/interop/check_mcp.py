"""MCP: a Python MCP server (official `mcp` SDK, MCPServer/FastMCP, streamable HTTP, SDK auth
with a TokenVerifier) and a Rust rmcp server (examples/interop_rmcp_server.rs), both called
with the `mcp` SDK's own streamable HTTP client."""

from __future__ import annotations

import asyncio
import json

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from harness import ACCESS_TOKEN, ID_TOKEN, JWT_TYPE


async def _call_whoami(url: str, token: str) -> tuple[dict | None, list[int], str | None]:
    statuses: list[int] = []

    async def record(response):
        statuses.append(response.status_code)

    identity, failure = None, None
    try:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                      event_hooks={"response": [record]}, timeout=15) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                result = await client.call_tool("whoami", {})
                assert not result.is_error, result
                identity = json.loads(result.content[0].text)
    except Exception as error:  # noqa: BLE001 - a refused call is an expected outcome here
        failure = f"{type(error).__name__}: {error}"
    return identity, statuses, failure


def call_whoami(url: str, token: str):
    return asyncio.run(asyncio.wait_for(_call_whoami(url, token), 30))


def run(env, results) -> None:
    sts, tp = env.sts, env.teleport
    alice_id = env.upstream["alice"]["id_token"]
    agent = tp.sign("ES256", "bot-claude", ["bot"])
    servers = [
        ("python mcp SDK server", env.mcp_urls["py"], {"resource": env.mcp_urls["py"]}),
        ("rust rmcp server", env.mcp_urls["rs"], {"audience": "rs-mcp"}),
    ]
    for name, url, target in servers:
        def allowed(url=url, target=target, name=name):
            token = sts.mint(alice_id, ID_TOKEN, actor_token=agent, actor_token_type=JWT_TYPE, **target)
            identity, statuses, failure = call_whoami(url, token)
            assert failure is None, f"{failure} (HTTP {statuses})"
            assert identity["sub"] == "alice", identity
            assert identity["act"]["sub"] == "bot-claude", identity
            assert identity["scope"] == "mcp:tools", identity
            assert identity["client_id"] == sts.CLIENT_ID and identity["delegation_mode"] == "on_behalf_of", identity

        results.check(f"{name}: tools/call whoami with a minted token returns sub alice, act bot-claude, scope mcp:tools", allowed)

        def refused(url=url):
            raw = env.upstream["alice"]["access_token"]
            other = sts.mint(env.upstream["bob"]["access_token"], ACCESS_TOKEN, audience="other-api")
            for label, token in (("raw upstream access token", raw), ("token minted for other-api", other)):
                identity, statuses, failure = call_whoami(url, token)
                assert identity is None and failure is not None, f"{label} was accepted: {identity}"
                assert statuses and statuses[0] == 401 and 200 not in statuses, f"{label}: HTTP {statuses}"

        results.check(f"{name}: the user's raw upstream token and a token for another audience are refused with HTTP 401", refused)
