// Browser end-to-end tests against a whole running stack (started by scripts/e2e):
// the console's live board across two browser contexts, the H5 chat on a phone-sized
// viewport through an offline spell, a builtin rule raising the bell count, and an
// axe-core check plus a screenshot of every key page.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BASE, adminToken, api, checkA11y, consoleLogin, env, eventually, launch, screenshot } from "./lib.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const stamp = Date.now().toString(36);

describe("console", () => {
  let a; // the first admin tab
  let b; // a second browser context: another person watching the same board
  let boardId;

  before(async () => {
    a = await (await browser.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true /* for axe */ })).newPage();
    b = await (await browser.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true /* for axe */ })).newPage();
  });

  test("login page is accessible and sign-in lands on the boards", async () => {
    await a.goto(BASE() + "/login");
    await checkA11y(a, "login");
    await screenshot(a, "console-login");
    await consoleLogin(a);
    await consoleLogin(b);
  });

  test("creating a board and a task shows up live in a second context; a drag-and-drop move too", async () => {
    const name = `E2E board ${stamp}`;
    await a.getByTestId("board-create-open").click();
    await a.getByTestId("board-create-name").fill(name);
    await a.getByTestId("board-create-submit").click();
    const link = a.getByTestId("board-link").filter({ hasText: name });
    await link.waitFor();
    boardId = await link.getAttribute("data-board-id");
    assert.ok(boardId, "board link carries its id");
    await link.click();
    await a.waitForURL(new RegExp(`/boards/${boardId}$`));
    await a.getByTestId("sync-live").waitFor();

    await b.goto(`${BASE()}/boards/${boardId}`);
    await b.getByTestId("sync-live").waitFor();

    const quick = a.locator('[data-testid="quick-create-input"][data-status="todo"]');
    await quick.fill("Write the release notes");
    await quick.press("Enter");
    const cardA = a.getByTestId("task-card").filter({ hasText: "Write the release notes" });
    const cardB = b.getByTestId("task-card").filter({ hasText: "Write the release notes" });
    await cardA.waitFor();
    await cardB.waitFor({ timeout: 10000 });
    assert.equal(await cardB.getAttribute("data-status"), "todo");

    await cardA.dragTo(a.locator('[data-testid="kanban-column"][data-status="in_progress"]'));
    await eventually(async () => (await cardB.getAttribute("data-status")) === "in_progress", 10000, "the move to reach the second context");
    // The server agrees, not just the two screens.
    const token = await adminToken();
    const tasks = await api("GET", `/api/v1/boards/${boardId}/tasks`, { token });
    assert.equal(tasks.items.find((t) => t.title === "Write the release notes").status, "in_progress");

    // Both tabs show the same board: same cards in the same columns.
    const layout = (p) =>
      p.getByTestId("task-card").evaluateAll((cards) =>
        cards.map((c) => `${c.getAttribute("data-task-id")}:${c.getAttribute("data-status")}`).sort(),
      );
    assert.deepEqual(await layout(a), await layout(b));
    await checkA11y(a, "kanban board");
    await screenshot(a, "console-board");
  });

  test("the task detail slide-over edits and comments", async () => {
    await a.getByTestId("task-card").filter({ hasText: "Write the release notes" }).click();
    const detail = a.getByTestId("task-detail");
    await detail.waitFor();
    await a.getByTestId("comment-input").fill("Drafted the outline");
    await a.getByTestId("comment-submit").click();
    await detail.getByText("Drafted the outline").waitFor();
    await checkA11y(a, "task detail");
    await screenshot(a, "console-task-detail");
    await a.keyboard.press("Escape");
  });

  test("a finished task that mentions a follow-up raises a suggestion and the bell count goes up", async () => {
    const count = async () => {
      const badge = a.getByTestId("suggestion-count");
      return (await badge.count()) ? Number((await badge.textContent()) || 0) : 0;
    };
    const before = await count();
    const token = await adminToken();
    const task = await api("POST", `/api/v1/boards/${boardId}/tasks`, {
      token,
      body: { title: `Ship it, then the follow-up ${stamp}`, status: "in_progress" },
    });
    await api("POST", `/api/v1/tasks/${task.id}/transition`, { token, body: { status: "done" } });
    await eventually(async () => (await count()) > before, 20000, "the bell count to rise");
    await a.getByTestId("suggestion-bell").click();
    const panel = a.getByTestId("suggestion-panel");
    await panel.waitFor();
    const item = panel.getByTestId("suggestion-item").filter({ hasText: "Follow up" }).first();
    await item.waitFor();
    await checkA11y(a, "suggestion panel");
    await screenshot(a, "console-suggestions");
    await item.getByTestId("suggestion-accept").click();
    // Accepting creates the follow-up task on the board.
    await eventually(async () => {
      const tasks = await api("GET", `/api/v1/boards/${boardId}/tasks?limit=100`, { token });
      return tasks.items.some((t) => /follow up/i.test(t.title) && t.id !== task.id);
    }, 10000, "the follow-up task");
    await a.keyboard.press("Escape");
  });

  test("a rule built in the form is saved as a valid tree and fires", async () => {
    await a.goto(BASE() + "/rules");
    await a.getByTestId("rule-create-open").click();
    const form = a.getByTestId("rule-form");
    await form.waitFor();
    const name = `Critical work ${stamp}`;
    await a.getByTestId("rule-name").fill(name);
    await a.getByTestId("rule-trigger").selectOption("task.created");
    await a.getByTestId("condition-add-row").first().click();
    await a.getByTestId("condition-field").first().fill("task.priority");
    await a.getByTestId("condition-op").first().selectOption("eq");
    await a.getByTestId("condition-value").first().fill("critical");
    await a.getByTestId("rule-title").fill(`Critical task: {task.title} ${stamp}`);
    await checkA11y(a, "rule form");
    await screenshot(a, "console-rule-form");
    await a.getByTestId("rule-save").click();
    await a.getByTestId("rule-row").filter({ hasText: name }).waitFor();

    const token = await adminToken();
    const rules = await api("GET", "/api/v1/proactive-rules?limit=100", { token });
    const rule = rules.items.find((r) => r.name === name);
    assert.ok(rule, "the rule is stored");
    assert.equal(rule.trigger_event, "task.created");
    assert.deepEqual(rule.conditions, { all: [{ field: "task.priority", op: "eq", value: "critical" }] });

    const board = await api("POST", "/api/v1/boards", { token, body: { name: `Rule board ${stamp}` } });
    await api("POST", `/api/v1/boards/${board.id}/tasks`, { token, body: { title: "Calm task", priority: "low" } });
    await api("POST", `/api/v1/boards/${board.id}/tasks`, { token, body: { title: "Fire", priority: "critical" } });
    const raised = await eventually(async () => {
      const page = await api("GET", "/api/v1/suggestions?status=pending&limit=100", { token });
      const mine = page.items.filter((x) => x.rule_id === rule.id);
      return mine.length ? mine : null;
    }, 20000, "the new rule to raise a suggestion");
    assert.equal(raised.length, 1, "only the critical task matches");
    assert.ok(raised[0].title.includes("Fire"), raised[0].title);
  });

  test("a gateway registration token is shown once, with a copy button", async () => {
    await a.goto(BASE() + "/gateways");
    await a.getByTestId("token-create-open").click();
    await a.getByTestId("token-name").fill(`office ${stamp}`);
    await a.getByTestId("token-create-submit").click();
    const secret = a.getByTestId("token-secret");
    await secret.waitFor();
    const value = await secret.inputValue();
    assert.ok(value.length >= 20, `a real token: ${value}`);
    await a.getByTestId("token-copy").waitFor();
    await a.getByTestId("token-secret-done").click();
    await secret.waitFor({ state: "detached" });
    // Never shown again: not in the list, not in the API's answer.
    assert.equal(await a.getByText(value).count(), 0);
    const token = await adminToken();
    const listed = await api("GET", "/api/v1/gateway-registry/tokens?limit=100", { token });
    assert.ok(!JSON.stringify(listed).includes(value), "the list holds no secret");
  });

  for (const [path, name] of [
    ["/boards", "console-boards"],
    ["/gateways", "console-gateways"],
    ["/agents", "console-agents"],
    ["/h5-users", "console-h5-users"],
    ["/rules", "console-rules"],
    ["/events", "console-events"],
    ["/jobs", "console-jobs"],
  ]) {
    test(`${path} renders real data and is accessible`, async () => {
      await a.goto(BASE() + path);
      await a.getByTestId("skeleton").first().waitFor({ state: "detached", timeout: 15000 }).catch(() => undefined);
      await a.waitForLoadState("networkidle").catch(() => undefined);
      const rows = {
        "/gateways": "gateway-row",
        "/agents": "agent-row",
        "/h5-users": "h5user-row",
        "/rules": "rule-row",
        "/events": "event-row",
        "/boards": "board-link",
      }[path];
      if (rows) await a.getByTestId(rows).first().waitFor({ timeout: 15000 });
      if (path === "/jobs") await a.getByTestId("queue-depth").waitFor();
      await checkA11y(a, path);
      await screenshot(a, name);
    });
  }

  test("the gateway detail shows live connections, and the light theme is accessible too", async () => {
    await a.goto(BASE() + "/gateways");
    await a.getByTestId("gateway-row").first().getByRole("link").first().click();
    await a.waitForURL(/\/gateways\/[0-9a-f-]+$/);
    await a.waitForLoadState("networkidle").catch(() => undefined);
    await checkA11y(a, "gateway detail");
    await screenshot(a, "console-gateway-detail");
    await a.getByTestId("theme-toggle").click();
    await a.goto(BASE() + "/boards");
    await a.getByTestId("board-link").first().waitFor();
    await checkA11y(a, "boards (other theme)");
    await screenshot(a, "console-boards-light");
    await a.getByTestId("theme-toggle").click();
  });
});

describe("H5 chat", () => {
  let page;
  let ctx;
  const frames = [];

  before(async () => {
    ctx = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      // axe-core is injected as an inline script, which the apps' CSP (rightly) refuses.
      bypassCSP: true,
    });
    page = await ctx.newPage();
    page.on("websocket", (ws) => {
      if (!ws.url().includes("/ws/h5/chat")) return;
      ws.on("framereceived", (f) => {
        try {
          frames.push(JSON.parse(typeof f.payload === "string" ? f.payload : f.payload.toString()));
        } catch {
          /* not JSON: ignored */
        }
      });
    });
  });

  test("an H5 user logs in on a phone and sees the assigned agent", async () => {
    await page.goto(`${BASE()}/h5/?org=${env("MC_E2E_H5_ORG")}`);
    await checkA11y(page, "h5 login");
    await screenshot(page, "h5-login");
    await page.getByTestId("h5-login-org").fill(env("MC_E2E_H5_ORG"));
    await page.getByTestId("h5-login-username").fill(env("MC_E2E_H5_USER"));
    await page.getByTestId("h5-login-password").fill(env("MC_E2E_H5_PASSWORD"));
    await page.getByTestId("h5-login-submit").click();
    const agent = page.getByTestId("h5-agent-item").filter({ hasText: env("MC_E2E_AGENT") });
    await agent.waitFor();
    await page.locator('[data-testid="conn-status"][data-state="connected"]').waitFor({ state: "attached" });
    await checkA11y(page, "h5 sessions");
    await screenshot(page, "h5-sessions");
    await agent.click();
    await page.getByTestId("chat-input").waitFor();
  });

  const messages = () =>
    page.getByTestId("chat-message").evaluateAll((els) =>
      els.map((e) => ({ seq: Number(e.getAttribute("data-seq")), role: e.getAttribute("data-role"), text: e.textContent })),
    );

  test("a message gets a streamed reply from the simulated agent", async () => {
    const agentReplies = async () => (await messages()).filter((m) => m.role === "agent").length;
    const before = await agentReplies();
    await page.getByTestId("chat-input").fill(`Hello from the e2e ${stamp}`);
    await page.getByTestId("chat-send").click();
    await eventually(async () => (await agentReplies()) > before, 20000, "the agent's reply");
    // Streamed: partial frames arrived before the final stored reply.
    const deltaAt = frames.findIndex((f) => f.type === "chat.delta");
    const finalAt = frames.findIndex((f) => f.type === "chat" && f.payload?.role === "agent");
    assert.ok(deltaAt >= 0, "chat.delta frames arrived");
    assert.ok(finalAt > deltaAt, "the final reply came after its deltas");
    const reply = frames[finalAt].payload.content;
    const shown = (await messages()).filter((m) => m.role === "agent").at(-1);
    assert.ok(shown.text.includes(reply.slice(0, 20)), "the bubble shows the reply");
    await checkA11y(page, "h5 chat");
    await screenshot(page, "h5-chat");
  });

  test("offline and back: messages typed offline are sent, nothing missing, nothing twice", async () => {
    const repliesBefore = (await messages()).filter((m) => m.role === "agent").length;
    await ctx.setOffline(true);
    await page.evaluate(() => window.dispatchEvent(new Event("offline")));
    await page.locator('[data-testid="conn-status"]:not([data-state="connected"])').waitFor();
    await screenshot(page, "h5-offline");
    await page.getByTestId("chat-input").fill(`Typed while offline ${stamp}`);
    await page.getByTestId("chat-send").click();
    // Shown at once, queued (no seq yet) until the socket is back.
    const queued = page.locator('[data-testid="chat-message"][data-role="user"]').filter({ hasText: `Typed while offline ${stamp}` });
    await queued.waitFor();
    assert.equal(await queued.getAttribute("data-seq"), null);
    await ctx.setOffline(false);
    await page.evaluate(() => window.dispatchEvent(new Event("online")));
    await page.locator('[data-testid="conn-status"][data-state="connected"]').waitFor({ state: "attached", timeout: 35000 });
    // The offline message is stored once and answered.
    await eventually(async () => {
      const all = await messages();
      const mine = all.filter((m) => m.role === "user" && m.text.includes(`Typed while offline ${stamp}`));
      return mine.length === 1 && mine[0].seq > 0 && all.filter((m) => m.role === "agent").length > repliesBefore;
    }, 30000, "the offline message to be delivered and answered");
    const all = await messages();
    const seqs = all.map((m) => m.seq).filter((s) => s > 0);
    assert.deepEqual(seqs, [...new Set(seqs)], "no duplicate seq on screen");
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), "in seq order");
    // No gap: the screen holds every stored message of the session, as the server has them.
    const login = await api("POST", "/api/v1/h5/auth/login", {
      body: { organization_slug: env("MC_E2E_H5_ORG"), username: env("MC_E2E_H5_USER"), password: env("MC_E2E_H5_PASSWORD") },
    });
    const sessions = await api("GET", "/api/v1/h5/chat/sessions", { token: login.access_token });
    const session = sessions.items.find((s) => s.last_seq >= Math.max(...seqs)) ?? sessions.items[0];
    const stored = await api("GET", `/api/v1/h5/chat/sessions/${session.id}/messages?after_seq=0&limit=100`, { token: login.access_token });
    assert.deepEqual(seqs, stored.items.map((m) => m.seq), "the screen shows exactly the stored conversation");
  });

  test("at 360 px nothing overflows sideways", async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  });

  test("logging out ends the login on the server too", async () => {
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("mc.h5.session") ?? "null"));
    assert.ok(stored?.access_token, "signed in");
    await page.getByTestId("h5-back").click();
    await page.getByTestId("h5-logout").click();
    await page.getByTestId("h5-login-username").waitFor();
    await eventually(async () => {
      const res = await fetch(`${BASE()}/api/v1/h5/auth/me`, { headers: { authorization: `Bearer ${stored.access_token}` } });
      return res.status === 401;
    }, 5000, "the old access token to be refused");
    const refresh = await fetch(`${BASE()}/api/v1/h5/auth/refresh`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: stored.refresh_token }),
    });
    assert.equal(refresh.status, 401, "the refresh token is revoked");
  });
});
