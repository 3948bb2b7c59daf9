"""Process, port and result plumbing shared by the check groups."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ID_JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, name: str, fn) -> object:
        """Run one check; any exception is a failure. Returns fn's value (None on failure)."""
        started = time.monotonic()
        try:
            value = fn()
        except Exception as error:  # noqa: BLE001
            self.fail(name, error)
            return None
        self.passed += 1
        print(f"PASS  {name}  ({time.monotonic() - started:.1f}s)", flush=True)
        return value

    def fail(self, name: str, error: Exception) -> None:
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if not isinstance(error, AssertionError):
            detail += "\n" + "".join(traceback.format_exception(error)[-3:])
        self.failed.append(name)
        print(f"FAIL  {name}\n      {detail.strip()}", flush=True)


class Processes:
    """Child processes of the run, each logging to a file in the run directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], **kwargs) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
        self.children.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.children):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 30.0, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code in ok:
                return
            last = r.status_code
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s (last: {last})")


class Sts:
    """A running mcp-sts with a per-run TOML configuration."""

    CLIENT_ID = "mcp-gateway"
    # Enterprise-managed authorization: the agent application (the public client of the
    # same name at oidc-provider, to which alice's ID token is issued) and the MCP server
    # mcp-sts is the authorization server of.
    AGENT_ID = "claude-desktop"
    JAG_RESOURCE = "https://jag-mcp.example/mcp"

    def __init__(self, binary: str, workdir: Path, procs: Processes, oidc_issuer: str, teleport, mcp_resources: dict,
                 jag_issuer, otlp_endpoint: str, spiffe=None, url_client=None):
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = "s3cret-" + os.urandom(12).hex()
        self.agent_secret = "agent-" + os.urandom(12).hex()
        self.admin_token = "admin-" + os.urandom(12).hex()
        self.config = workdir / "mcp-sts.toml"
        self.config.write_text(self._toml(workdir, oidc_issuer, teleport, mcp_resources, jag_issuer, otlp_endpoint)
                               + (spiffe.toml() if spiffe else "") + (url_client.toml() if url_client else ""))
        # Spans are exported in batches; a short schedule delay keeps the trace checks quick.
        self.proc = procs.start("mcp-sts", [binary, "serve", "--config", str(self.config)], cwd=workdir,
                                env={**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "200"})
        wait_http(f"{self.url}/healthz", self.proc)

    def _toml(self, workdir: Path, oidc_issuer: str, teleport, mcp_resources: dict, jag_issuer,
              otlp_endpoint: str) -> str:
        return f"""
[server]
listen = "127.0.0.1:{self.port}"
issuer = "{self.url}"

[keys]
dir = "{workdir / 'keys'}"
reload_seconds = 1
# The suite watches a rotated key start signing within seconds (its verifiers' refetch
# cooldowns are shortened to 1 s), so it turns the default pre-publication delay off.
activate_after_seconds = 0

[tokens]
default_ttl_seconds = 300

[revocation]
backend = "embedded"
path = "{workdir / 'revocations.db'}"

[audit]
file = "{workdir / 'audit.jsonl'}"

[admin]
token_sha256 = "{sha256_hex(self.admin_token)}"

[telemetry]
otlp_endpoint = "{otlp_endpoint}"
service_name = "mcp-sts-interop"

# node oidc-provider: trusted through OIDC discovery (no jwks_uri). Its access tokens
# name the OAuth client that obtained them in client_id: the agent application.
[[issuers]]
issuer = "{oidc_issuer}"
audience = "mcp-sts"
roles_claim = "roles"
algorithms = ["RS256", "ES256"]
agent_claim = "client_id"

# Teleport-shaped: the issuer is a cluster name, so the JWKS is explicit. Its Shared
# Signals transmitter (tests/interop/ssf_transmitter.py) revokes sessions and users.
[[issuers]]
issuer = "{teleport.CLUSTER}"
audience = "{teleport.AUDIENCE}"
jwks_uri = "{teleport.jwks_uri}"
roles_claim = "roles"
algorithms = ["RS256", "ES256"]
[issuers.ssf]
configuration = "{teleport.ssf.configuration_url}"
client_id = "{teleport.SSF_RECEIVER}"
client_secret = "{teleport.ssf_secret}"
poll_interval_seconds = 1

# An independent ID-JAG issuer (jag_issuer.py): trusted for grants, through its JWKS.
[[issuers]]
issuer = "{jag_issuer.issuer}"
audience = "mcp-sts"
jwks_uri = "{jag_issuer.jwks_uri}"
algorithms = ["ES256"]
accept_id_jag = true

[[clients]]
client_id = "{self.AGENT_ID}"
secret_sha256 = "{sha256_hex(self.agent_secret)}"
audiences = ["jag-mcp"]
authorization_servers = ["{self.url}"]

[[audiences]]
id = "jag-mcp"
resource = "{self.JAG_RESOURCE}"
mode = "on_behalf_of"
scopes = ["mcp:tools", "mcp:admin"]

# mcp-sts is the authorization server of jag-mcp: it issues grants for it and redeems them.
[[authorization_servers]]
issuer = "{self.url}"
[[authorization_servers.resources]]
resource = "{self.JAG_RESOURCE}"
scopes = ["mcp:tools", "mcp:admin"]
[authorization_servers.resources.role_scopes]
developer = ["mcp:tools"]
order-admin = ["mcp:tools"]

[[clients]]
client_id = "{self.CLIENT_ID}"
secret_sha256 = "{sha256_hex(self.secret)}"
audiences = ["orders-api", "other-api", "py-mcp", "rs-mcp"]

[[audiences]]
id = "orders-api"
resource = "https://orders.example.com/api"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write", "orders:admin"]
[audiences.role_scopes]
developer = ["orders:read"]
order-admin = ["orders:read", "orders:write", "orders:admin"]

[[audiences]]
id = "other-api"
mode = "on_behalf_of"
scopes = ["mcp:tools"]
[audiences.role_scopes]
developer = ["mcp:tools"]
order-admin = ["mcp:tools"]

[[audiences]]
id = "py-mcp"
resource = "{mcp_resources['py']}"
mode = "on_behalf_of"
scopes = ["mcp:tools"]
[audiences.role_scopes]
developer = ["mcp:tools"]
order-admin = ["mcp:tools"]

[[audiences]]
id = "rs-mcp"
resource = "{mcp_resources['rs']}"
mode = "on_behalf_of"
scopes = ["mcp:tools"]
[audiences.role_scopes]
developer = ["mcp:tools"]
order-admin = ["mcp:tools"]
"""

    def exchange(self, subject_token: str, subject_token_type: str, **params) -> httpx.Response:
        """A plain RFC 8693 request (client_secret_basic) with httpx, for the server-side checks."""
        form = {"grant_type": TOKEN_EXCHANGE, "subject_token": subject_token, "subject_token_type": subject_token_type}
        form.update({k: v for k, v in params.items() if v is not None})
        return httpx.post(f"{self.url}/token", data=form, auth=(self.CLIENT_ID, self.secret), timeout=10)

    def mint(self, subject_token: str, subject_token_type: str, **params) -> str:
        r = self.exchange(subject_token, subject_token_type, **params)
        assert r.status_code == 200, f"mint: HTTP {r.status_code} {r.text}"
        return r.json()["access_token"]

    def jwks_kids(self) -> list[str]:
        return [k["kid"] for k in httpx.get(f"{self.url}/.well-known/jwks.json", timeout=5).json()["keys"]]

    def rotate(self) -> str:
        out = subprocess.run(
            [self.binary, "keys", "rotate", "--config", str(self.config)],
            capture_output=True, text=True, timeout=30, cwd=self.config.parent,
        )
        assert out.returncode == 0, f"keys rotate failed: {out.stderr}"
        return out.stdout


class NodePeer:
    """node peers/node_peer.mjs: openid-client and jose, one JSON line per request."""

    def __init__(self, workdir: Path) -> None:
        self.stderr = open(workdir / "node-peer.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["node", str(HERE / "peers" / "node_peer.mjs")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=HERE,
        )

    def call(self, **request) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("node peer exited")
        reply = json.loads(line)
        if reply.get("crashed"):
            raise RuntimeError(f"node peer: {reply['message']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.terminate()


def error_of(response: httpx.Response) -> tuple[int, str | None]:
    try:
        return response.status_code, response.json().get("error")
    except json.JSONDecodeError:
        return response.status_code, None


def log(message: str) -> None:
    print(f"..    {message}", file=sys.stdout, flush=True)
