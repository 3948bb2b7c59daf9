"""OpenTelemetry: mcp-sts exports its spans over OTLP/HTTP to an independent receiver
(otlp_receiver.py, decoding with the `opentelemetry-proto` package). A W3C traceparent on
/token continues the caller's trace and becomes the minted token's `txn`; the MCP server
kit carries a tool call's traceparent to mcp-sts, so the exchange it makes for the tool
is in the agent's trace. Spans name the decision, mode, client, audience and error code,
and no token is in anything that reaches the receiver."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import httpx2
import jwt
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from check_kit import AGENT
from harness import ACCESS_TOKEN, ID_TOKEN, TOKEN_EXCHANGE
from upstream import oidc_login


def _traceparent() -> tuple[str, str, str]:
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def _wait_for(receiver, trace_id: str, name: str, deadline: float = 20.0) -> list[dict]:
    """The spans of `trace_id` once one named `name` arrived (batches are exported on a timer)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        spans = receiver.spans_of(trace_id)
        if any(s["name"] == name for s in spans):
            time.sleep(0.5)  # the rest of the batch, if it came in two
            return receiver.spans_of(trace_id)
        time.sleep(0.1)
    raise AssertionError(f"no span {name!r} of trace {trace_id} within {deadline}s: "
                         f"{[(s['name'], s['trace_id']) for s in receiver.spans]}")


def _exchange(sts, traceparent: str, subject: str, subject_type: str, **params) -> httpx.Response:
    form = {"grant_type": TOKEN_EXCHANGE, "subject_token": subject, "subject_token_type": subject_type, **params}
    return httpx.post(f"{sts.url}/token", data=form, auth=(sts.CLIENT_ID, sts.secret),
                      headers={"traceparent": traceparent}, timeout=10)


def _token_parts(token: str) -> list[bytes]:
    return [token.encode(), *(part.encode() for part in token.split(".") if len(part) > 16)]


def run(env, results) -> None:
    sts, receiver = env.sts, env.otlp

    def allowed_exchange():
        traceparent, trace_id, parent = _traceparent()
        subject = env.upstream["alice"]["id_token"]
        r = _exchange(sts, traceparent, subject, ID_TOKEN, audience="orders-api", scope="orders:read")
        assert r.status_code == 200, r.text
        minted = r.json()["access_token"]
        assert jwt.decode(minted, options={"verify_signature": False})["txn"] == trace_id
        spans = _wait_for(receiver, trace_id, "POST /token")
        (request,) = [s for s in spans if s["name"] == "POST /token"]
        assert request["parent_span_id"] == parent, request
        assert request["service"] == "mcp-sts-interop", request
        attributes = request["attributes"]
        assert attributes["http.route"] == "/token" and attributes["http.response.status_code"] == 200, attributes
        assert attributes["mcp_sts.decision"] == "allow" and attributes["mcp_sts.event"] == "token_exchange", attributes
        assert attributes["mcp_sts.mode"] == "on_behalf_of", attributes
        assert attributes["mcp_sts.client_id"] == sts.CLIENT_ID, attributes
        assert attributes["mcp_sts.audience"] in ("orders-api", "https://orders.example.com/api"), attributes
        assert "error.type" not in attributes, attributes
        # The store's work is in the same trace, under the request's span.
        ids = {s["span_id"] for s in spans}
        assert all(s["parent_span_id"] in ids for s in spans if s is not request), spans
        assert any(s["name"] == "revocation_store" for s in spans), spans
        received = receiver.received_bytes()
        for part in _token_parts(subject) + _token_parts(minted) + [sts.secret.encode()]:
            assert part not in received, "a token or secret reached the trace receiver"

    results.check("traces: /token with a traceparent -> a span of that trace, child of the caller's span, "
                  "exported over OTLP/HTTP to an independent receiver, with decision, mode, client, audience; "
                  "the minted txn is the trace id; no token in any span", allowed_exchange)

    def untraced_exchange():
        subject = env.upstream["alice"]["id_token"]
        form = {"grant_type": TOKEN_EXCHANGE, "subject_token": subject, "subject_token_type": ID_TOKEN,
                "audience": "orders-api", "scope": "orders:read"}
        r = httpx.post(f"{sts.url}/token", data=form, auth=(sts.CLIENT_ID, sts.secret), timeout=10)
        assert r.status_code == 200, r.text
        txn = jwt.decode(r.json()["access_token"], options={"verify_signature": False})["txn"]
        (request,) = [s for s in _wait_for(receiver, txn, "POST /token") if s["name"] == "POST /token"]
        assert request["parent_span_id"] == "", request
        assert request["attributes"]["mcp_sts.decision"] == "allow", request

    results.check("traces: /token without a traceparent starts a trace, and the minted txn is its trace id",
                  untraced_exchange)

    def refused_exchange():
        traceparent, trace_id, _ = _traceparent()
        subject = env.upstream["bob"]["access_token"]
        r = _exchange(sts, traceparent, subject, ACCESS_TOKEN, audience="orders-api", scope="orders:admin")
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
        (request,) = [s for s in _wait_for(receiver, trace_id, "POST /token") if s["name"] == "POST /token"]
        attributes = request["attributes"]
        assert attributes["mcp_sts.decision"] == "deny" and attributes["error.type"] == "invalid_scope", attributes
        assert attributes["http.response.status_code"] == 400, attributes
        for part in _token_parts(subject):
            assert part not in receiver.received_bytes(), "the refused subject token reached the trace receiver"

    results.check("traces: a refused exchange's span says deny and error.type invalid_scope, without the token",
                  refused_exchange)

    def background_work():
        # Run after the Shared Signals groups: their polls, and the issuer key fetches
        # made at start, are spans too.
        names = {s["name"]: s for s in receiver.spans}
        assert "jwks_fetch" in names and names["jwks_fetch"]["attributes"].get("source"), sorted(names)
        polls = [s for s in receiver.spans if s["name"] == "ssf_poll"]
        assert polls and all(s["attributes"].get("receiver") for s in polls), sorted(names)

    results.check("traces: issuer key fetches (jwks_fetch) and Shared Signals polls (ssf_poll, by receiver) "
                  "are exported too", background_work)

    def kit_carries_the_trace():
        traceparent, trace_id, _ = _traceparent()
        token = oidc_login(env.oidc_issuer, "alice", None, env.redirect_uri, client_id=AGENT, resource=env.kit_url,
                           scope="notes:read notes:write")["access_token"]

        async def call():
            headers = {"Authorization": f"Bearer {token}", "traceparent": traceparent}
            async with httpx2.AsyncClient(headers=headers, timeout=15) as http:
                async with Client(streamable_http_client(env.kit_url, http_client=http)) as client:
                    return await client.call_tool("add_note", {"text": "traced"})

        asyncio.run(asyncio.wait_for(call(), 60))
        spans = _wait_for(receiver, trace_id, "POST /token")
        (request,) = [s for s in spans if s["name"] == "POST /token"]
        attributes = request["attributes"]
        assert attributes["mcp_sts.event"] == "token_exchange", attributes
        assert attributes["mcp_sts.client_id"] == sts.CLIENT_ID, attributes
        for part in _token_parts(token):
            assert part not in receiver.received_bytes(), "the MCP access token reached the trace receiver"

    results.check("traces: a tool call with a traceparent at the kit -> the kit's exchange at mcp-sts is a span "
                  "of the same trace (Python MCP SDK client -> kit -> mcp-sts)", kit_carries_the_trace)
