"""The interoperability suite: starts every peer on free loopback ports, runs each check
group, prints one PASS/FAIL line per check and `N passed, M failed` last."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import check_clients
import check_dpop
import check_id_jag
import check_idp
import check_kit
import check_mcp
import check_ssf
import check_traces
import check_url_clients
import check_upstream_ssf
import check_verifiers
import check_workloads
from harness import HERE, NodePeer, Processes, Results, Sts, free_port, wait_http
from jag_issuer import JagIssuer
from otlp_receiver import OtlpReceiver
from spiffe_domain import SpiffeDomain
from upstream import TeleportIssuer, oidc_login
from url_client import UrlClient

ROLES = {"alice": ["order-admin"], "bob": ["developer"]}  # as in peers/oidc_provider.mjs


def start_peers(env, procs: Processes, workdir: Path) -> None:
    oidc_port, env.oidc_secret = free_port(), os.urandom(16).hex()
    env.oidc_issuer = f"http://127.0.0.1:{oidc_port}"
    env.redirect_uri = f"http://127.0.0.1:{free_port()}/callback"  # never called: the code is read from the redirect
    kit_port = free_port()
    env.kit_url = f"http://127.0.0.1:{kit_port}/mcp"
    oidc = procs.start("oidc-provider", ["node", str(HERE / "peers" / "oidc_provider.mjs"), str(oidc_port),
                                         env.oidc_secret, env.redirect_uri, env.kit_url], cwd=HERE)
    env.teleport = TeleportIssuer()
    env.jag_issuer = JagIssuer()
    env.spiffe = SpiffeDomain()
    env.url_client = UrlClient()
    ports = {"py": free_port(), "rs": free_port()}
    env.mcp_urls = {k: f"http://127.0.0.1:{p}/mcp" for k, p in ports.items()}
    wait_http(f"{env.oidc_issuer}/.well-known/openid-configuration", oidc)

    env.otlp = OtlpReceiver()
    env.sts = Sts(os.environ["MCP_STS_BIN"], workdir, procs, env.oidc_issuer, env.teleport, env.mcp_urls,
                  env.jag_issuer, env.otlp.url, env.spiffe, env.url_client)
    env.teleport.ssf.audience = env.sts.url  # the SETs' aud: mcp-sts's issuer (its default)
    py = procs.start("python-mcp", [sys.executable, str(HERE / "peers" / "mcp_server.py"), str(ports["py"]),
                                    env.sts.url, env.mcp_urls["py"], "mcp:tools"], cwd=HERE)
    rs = procs.start("rust-rmcp", [os.environ["RMCP_SERVER_BIN"], f"127.0.0.1:{ports['rs']}", env.sts.url, "rs-mcp"])
    # The MCP server kit's example, trusting oidc-provider and exchanging as mcp-gateway.
    secret_file = workdir / "mcp-gateway.secret"
    secret_file.write_text(env.sts.secret)
    kit = procs.start("kit-mcp", [os.environ["KIT_SERVER_BIN"]], cwd=workdir, env={
        **os.environ,
        "MCP_STS_URL": env.sts.url,
        "IDP_ISSUER": env.oidc_issuer,
        "NOTES_MCP_CLIENT_ID": Sts.CLIENT_ID,
        "NOTES_MCP_SECRET_FILE": str(secret_file),
        "NOTES_MCP_LISTEN": f"127.0.0.1:{kit_port}",
    })
    env.node = NodePeer(workdir)
    # The MCP servers answer an unauthenticated request with 401 once they are up.
    wait_http(env.mcp_urls["py"], py, ok=(401,))
    wait_http(env.mcp_urls["rs"], rs, ok=(401,))
    wait_http(env.kit_url, kit, ok=(401,))
    env.upstream = {user: oidc_login(env.oidc_issuer, user, env.oidc_secret, env.redirect_uri) for user in ROLES}
    env.roles = ROLES


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup below on SIGTERM too
    workdir = Path(tempfile.mkdtemp(prefix="mcp-sts-interop-"))
    procs, results, env = Processes(workdir), Results(), SimpleNamespace()
    try:
        try:
            start_peers(env, procs, workdir)
            print("..    setup: oidc-provider, Teleport-shaped issuer, mcp-sts, MCP servers up; alice and bob logged in", flush=True)
        except Exception as error:  # noqa: BLE001
            results.fail("setup: start the peers and log alice and bob in at oidc-provider", error)
        else:
            for group in (check_idp, check_clients, check_dpop, check_id_jag, check_verifiers, check_mcp, check_kit,
                          check_ssf, check_upstream_ssf, check_workloads, check_url_clients, check_traces):
                try:
                    group.run(env, results)
                except Exception as error:  # noqa: BLE001 - a crashed group is one more failure
                    results.fail(f"{group.__name__}: crashed before its last check", error)
    finally:
        if getattr(env, "node", None):
            env.node.close()
        if getattr(env, "teleport", None):
            env.teleport.close()
        if getattr(env, "jag_issuer", None):
            env.jag_issuer.close()
        if getattr(env, "otlp", None):
            env.otlp.close()
        if getattr(env, "spiffe", None):
            env.spiffe.close()
        if getattr(env, "url_client", None):
            env.url_client.close()
        procs.stop_all()
    if results.failed:
        print(f"logs kept in {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"wall time {time.monotonic() - started:.1f}s", flush=True)
    print(f"{results.passed} passed, {len(results.failed)} failed", flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
