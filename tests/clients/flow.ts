// Warden's account flows through openapi-fetch, typed by what openapi-typescript generates.
//
// tests/test_generated_clients.py compiles this next to the generated schema.ts and runs
// `node flow.js BASE_URL` with WARDEN_ADMIN_EMAIL and WARDEN_ADMIN_PASSWORD set. Each step
// prints one line; any surprise exits non-zero. Types are narrowed by checks, never asserted.
import createClient from "openapi-fetch";
import type { paths } from "./schema.js";

const EMAIL = "typescript-flow@example.com";
const PASSWORD = "a walk in the park at dawn";

function fail(step: string, what: unknown): never {
  throw new Error(`${step}: ${JSON.stringify(what)}`);
}

function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}

const [baseUrl] = process.argv.slice(2);
const adminEmail = process.env.WARDEN_ADMIN_EMAIL;
const adminPassword = process.env.WARDEN_ADMIN_PASSWORD;
if (baseUrl === undefined || adminEmail === undefined || adminPassword === undefined) {
  fail("usage", "node flow.js BASE_URL with WARDEN_ADMIN_EMAIL and WARDEN_ADMIN_PASSWORD");
}
const client = createClient<paths>({ baseUrl });

async function logIn(email: string, password: string) {
  const { data, error } = await client.POST("/api/v1/auth/login", { body: { email, password } });
  // 202 would be a second-factor challenge, which has no token_type.
  if (data === undefined || !("token_type" in data) || data.token_type !== "Bearer") {
    fail(`login ${email}`, error ?? data);
  }
  return data;
}

const created = await client.POST("/api/v1/auth/register", {
  body: { email: EMAIL, password: PASSWORD },
});
if (created.data === undefined || !("id" in created.data)) fail("register", created.error);
const user = created.data;
console.log(`registered ${user.email}`);

const tokens = await logIn(EMAIL, PASSWORD);
console.log(`logged in, access token valid ${tokens.expires_in} s`);

const me = await client.GET("/api/v1/users/me", { headers: bearer(tokens.access_token) });
if (me.data === undefined) fail("me", me.error);
if (me.data.id !== user.id) fail("me", `/users/me is ${me.data.id}, registered ${user.id}`);
console.log(`me: ${me.data.email} (${me.data.role})`);

const refreshed = await client.POST("/api/v1/auth/refresh", {
  headers: bearer(tokens.refresh_token),
});
if (refreshed.data?.token_type !== "Bearer") fail("refresh", refreshed.error ?? refreshed.data);
const session = bearer(refreshed.data.access_token);
console.log("refreshed the token pair");

const sessions = await client.GET("/api/v1/auth/sessions", { headers: session });
if (sessions.data === undefined) fail("sessions", sessions.error);
const current = sessions.data.filter((entry) => entry.current).map((entry) => entry.id);
console.log(`sessions: ${sessions.data.length}, current: ${current.length}`);

const ended = await client.POST("/api/v1/auth/logout", { headers: session });
if (ended.response.status !== 204) fail("logout", ended.error);
console.log("logged out");

const refused = await client.GET("/api/v1/users/me", { headers: session });
if (refused.error === undefined) fail("me after logout", refused.data);
const problem = refused.error;
if (refused.response.status !== 401 || problem.status !== refused.response.status) {
  fail("me after logout", problem);
}
console.log(`problem: ${problem.status} ${problem.code}`);

const admin = bearer((await logIn(adminEmail, adminPassword)).access_token);
const emails: string[] = [];
let pages = 0;
let cursor: string | undefined;
do {
  const page = await client.GET("/api/v1/users", {
    params: { query: { limit: 3, cursor } },
    headers: admin,
  });
  if (page.data === undefined) fail("users", page.error);
  emails.push(...page.data.items.map((entry) => entry.email));
  pages += 1;
  cursor = page.data.next_cursor ?? undefined;
} while (cursor !== undefined);
if (new Set(emails).size !== emails.length || !emails.includes(EMAIL)) {
  fail("users", `the walk over users repeats or misses one: ${emails.join(", ")}`);
}
console.log(`listed ${emails.length} users on ${pages} pages`);
