// Helpers for the browser end-to-end run: Chromium, sign-in, the REST API for setup,
// axe-core checks and screenshots.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through scripts/e2e)`);
  return v;
};

export const BASE = () => env("MC_E2E_BASE_URL");

export async function launch() {
  return chromium.launch({
    executablePath: env("MC_CHROMIUM"),
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
}

/** JSON call to the API; throws with the body on a non-2xx. */
export async function api(method, path, { token, body, org } = {}) {
  const res = await fetch(BASE() + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(org ? { "x-org-id": org } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return json;
}

let adminLogin = null;

/** An admin access token, from one login per run (logins are rate-limited per account). */
export function adminToken() {
  adminLogin ??= api("POST", "/api/v1/auth/login", {
    body: { email: env("MC_E2E_ADMIN_EMAIL"), password: env("MC_E2E_ADMIN_PASSWORD") },
  }).then((r) => r.access_token);
  return adminLogin;
}

/** Signs in through the console's login form. */
export async function consoleLogin(page) {
  await page.goto(BASE() + "/login");
  await page.getByTestId("login-email").fill(env("MC_E2E_ADMIN_EMAIL"));
  await page.getByTestId("login-password").fill(env("MC_E2E_ADMIN_PASSWORD"));
  await page.getByTestId("login-submit").click();
  await page.waitForURL(/\/boards$/);
}

const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** Runs axe-core on the page; fails on any serious or critical violation. */
export async function checkA11y(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `${name}: accessibility violations\n${JSON.stringify(bad, null, 2)}`);
  return result;
}

/** Saves docs/screenshots/NAME.png. */
export async function screenshot(page, name) {
  const dir = env("MC_E2E_SCREENSHOTS");
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function eventually(fn, ms = 15000, what = "condition") {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}
