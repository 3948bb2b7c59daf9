// The upstream identity provider: node-oidc-provider (OpenID Certified), configured
// for the suite. Usage: node oidc_provider.mjs <port> <client_secret> <redirect_uri> <mcp_resource>
// Issues RS256 ID tokens to client `mcp-sts` and ES256 JWT access tokens for the
// resource `urn:mcp-sts` (audience `mcp-sts`), both carrying a `roles` claim. The public
// client `claude-desktop` is an MCP client (the agent application): its JWT access
// tokens (RFC 9068) name it in `client_id`, for `urn:mcp-sts` or for the MCP server at
// <mcp_resource> (audience that URI, scopes notes:read and notes:write).
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const [port, clientSecret, redirectUri, mcpResource] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
export const RESOURCE = 'urn:mcp-sts';

const USERS = {
  alice: { roles: ['order-admin'], email: 'alice@example.com' },
  bob: { roles: ['developer'], email: 'bob@example.com' },
};

async function privateJwk(alg, options) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return { ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `${alg.toLowerCase()}-${Date.now()}` };
}

const jwks = { keys: [await privateJwk('RS256', { modulusLength: 2048 }), await privateJwk('ES256')] };

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'mcp-sts',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }, {
    client_id: 'claude-desktop',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks,
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'roles', 'orders'],
  claims: { openid: ['sub'], email: ['email'], roles: ['roles'] },
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() { return { sub: id, email: user.email, roles: user.roles }; },
    };
  },
  async extraTokenClaims(_ctx, token) {
    const user = USERS[token.accountId];
    return user ? { roles: user.roles } : undefined;
  },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      async getResourceServerInfo(_ctx, resourceIndicator) {
        if (resourceIndicator === mcpResource) {
          return {
            scope: 'notes:read notes:write',
            audience: mcpResource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 600,
            jwt: { sign: { alg: 'ES256' } },
          };
        }
        if (resourceIndicator !== RESOURCE) throw new Error('unknown resource');
        return {
          scope: 'orders',
          audience: 'mcp-sts',
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  ttl: { IdToken: 600, AccessToken: 600 },
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error', err));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
