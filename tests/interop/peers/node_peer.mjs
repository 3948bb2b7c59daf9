// Node peers of the suite, driven over JSON lines on stdin/stdout so that state (the
// jose remote JWKS cache) lives across a key rotation.
//   {"op":"exchange", "issuer", "client_id", "secret", "method":"basic"|"post", "params":{...}}
//     -> openid-client v6: discovery (RFC 8414) + genericGrantRequest (token exchange)
//   {"op":"verify", "issuer", "audience", "token"}
//     -> jose: createRemoteJWKSet + jwtVerify
import * as readline from 'node:readline';
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const configs = new Map();
const jwksSets = new Map();

async function exchange({ issuer, client_id, secret, method, params }) {
  const key = `${issuer}|${client_id}|${secret}|${method}`;
  if (!configs.has(key)) {
    const auth = method === 'basic' ? client.ClientSecretBasic(secret) : client.ClientSecretPost(secret);
    configs.set(key, await client.discovery(new URL(issuer), client_id, undefined, auth, {
      algorithm: 'oauth2',
      execute: [client.allowInsecureRequests],
    }));
  }
  try {
    const response = await client.genericGrantRequest(configs.get(key), TOKEN_EXCHANGE, params);
    return { ok: true, access_token: response.access_token, token_type: response.token_type,
      issued_token_type: response.issued_token_type, scope: response.scope, expires_in: response.expires_in };
  } catch (error) {
    const reply = { ok: false, name: error.constructor.name, error: error.error, status: error.status,
      error_description: error.error_description, message: error.message };
    if (error instanceof client.WWWAuthenticateChallengeError) {
      // A 401 with WWW-Authenticate is surfaced as the parsed challenge; the RFC 6749
      // error body stays readable on error.response.
      reply.challenges = error.cause;
      reply.body_error = (await error.response.json()).error;
    }
    return reply;
  }
}

async function verify({ issuer, audience, token }) {
  if (!jwksSets.has(issuer)) {
    // jose refuses to refetch within `cooldownDuration` (30 s by default) of the last
    // fetch; shortened so a rotation is seen within the suite's time budget.
    jwksSets.set(issuer, createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`), { cooldownDuration: 1000 }));
  }
  try {
    const { payload, protectedHeader } = await jwtVerify(token, jwksSets.get(issuer), {
      issuer, audience, typ: 'at+jwt', algorithms: ['ES256', 'RS256'], requiredClaims: ['exp', 'sub', 'jti'],
    });
    return { ok: true, payload, header: protectedHeader };
  } catch (error) {
    return { ok: false, code: error.code, claim: error.claim, message: error.message };
  }
}

const ops = { exchange, verify };
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  let reply;
  try {
    const request = JSON.parse(line);
    reply = await ops[request.op](request);
  } catch (error) {
    reply = { ok: false, crashed: true, message: String(error?.stack ?? error) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}
