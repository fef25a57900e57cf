// A real OpenID Provider (panva/oidc-provider) on loopback for the suite.
// Usage: node tests/oidc_provider.mjs <port>; configuration as JSON in OIDC_TEST_CONFIG:
//   {"clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
//    "accounts": {"<login>": {"email", "email_verified", "name"}}}
// Its development login form accepts any login (the account id) with any password.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const config = JSON.parse(process.env.OIDC_TEST_CONFIG || '{}');
const accounts = config.accounts || {};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: (config.clients || []).map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  async findAccount(_ctx, id) {
    const known = accounts[id] || { email: `${id}@example.org`, email_verified: false };
    return { accountId: id, async claims() { return { sub: id, ...known }; } };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The ID token carries the claims the scopes ask for, as most providers' do.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  cookies: { keys: ['suite-only-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  ttl: { AuthorizationCode: 60, IdToken: 300, AccessToken: 300, Interaction: 600, Session: 600, Grant: 600 },
});
provider.on('server_error', (_ctx, error) => console.error('server_error', error));
provider.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
