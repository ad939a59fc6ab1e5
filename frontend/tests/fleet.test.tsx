// Fleet pages against a stubbed HTTP layer: the real api client, pages and providers; only
// fetch answers from fixtures (recorded per request so the calls can be asserted).
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { ReactNode } from "react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

type Handler = (req: Request) => Response | Promise<Response> | undefined;
const http = vi.hoisted(() => {
  const state = { handlers: [] as Handler[], calls: [] as { method: string; url: URL; body: string }[] };
  // openapi-fetch binds fetch when the client is created, so this must exist first.
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(input, init);
    const body = req.method === "GET" || req.method === "DELETE" ? "" : await req.clone().text();
    state.calls.push({ method: req.method, url: new URL(req.url), body });
    for (const h of state.handlers) {
      const res = await h(req);
      if (res) return res;
    }
    return new Response(JSON.stringify({ error: { code: "not_found", message: `no fixture for ${req.method} ${req.url}` } }), {
      status: 404,
      headers: { "content-type": "application/json" },
    });
  }) as typeof fetch;
  return state;
});

vi.mock("../src/console/api", async () => {
  const { createApiClient } = await import("../src/shared/api/client");
  const { SessionStore } = await import("../src/shared/api/session");
  const { unwrap } = await import("../src/shared/api/errors");
  const session = new SessionStore("test.session", "/api/v1/auth/refresh");
  return { session, api: createApiClient(session, "http://mc.test"), unwrap, queryClient: null };
});

const role = vi.hoisted(() => ({ current: "admin" }));
vi.mock("../src/console/auth", async (importOriginal) => {
  const real = await importOriginal<typeof import("../src/console/auth")>();
  const current = () => role.current as Parameters<typeof real.roleAtLeast>[0];
  return {
    ...real,
    useAuth: () => ({ role: current(), signedIn: true }),
    useCanWrite: () => real.roleAtLeast(current(), "developer"),
    useRoleAtLeast: (min: Parameters<typeof real.roleAtLeast>[1]) => real.roleAtLeast(current(), min),
  };
});

import { I18nProvider } from "../src/shared/i18n";
import fleetStrings from "../src/console/i18n/fleet";
import { dictionaries } from "../src/console/i18n";
import { ConfirmProvider } from "../src/console/ui/Confirm";
import { ToastProvider } from "../src/console/ui/Toasts";
import { GatewaysPage } from "../src/console/pages/GatewaysPage";
import { GatewayDetailPage } from "../src/console/pages/GatewayDetailPage";
import { H5UsersPage } from "../src/console/pages/H5UsersPage";
import { JobsPage } from "../src/console/pages/JobsPage";
import { AgentsPage } from "../src/console/pages/AgentsPage";

const json = (body: unknown, status = 200) =>
  new Response(status === 204 ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

function route(method: string, path: string | RegExp, answer: (req: Request, url: URL) => Response | Promise<Response>) {
  http.handlers.push((req) => {
    const url = new URL(req.url);
    const ok = req.method === method && (typeof path === "string" ? url.pathname === path : path.test(url.pathname));
    return ok ? answer(req, url) : undefined;
  });
}

function renderAt(path: string, pattern: string, page: ReactNode) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <I18nProvider dictionaries={dictionaries} storageKey="test.locale">
        <ToastProvider>
          <ConfirmProvider>
            <MemoryRouter initialEntries={[path]}>
              <Routes>
                <Route path={pattern} element={page} />
              </Routes>
            </MemoryRouter>
          </ConfirmProvider>
        </ToastProvider>
      </I18nProvider>
    </QueryClientProvider>,
  );
}

const now = new Date().toISOString();
const gateway = {
  id: "11111111-1111-1111-1111-111111111111",
  organization_id: "org",
  name: "office-sh",
  status: "online",
  last_heartbeat_at: now,
  version: "2026.9.6",
  url: null,
  workspace_root: null,
  capabilities: [],
  auto_registered: true,
  connection_info: { ip: "10.0.0.2", metrics: { active_sessions: 2, agent_count: 3, cpu_pct: 12.5, memory_mb: 256 } },
  created_at: now,
  updated_at: now,
};

beforeEach(() => {
  localStorage.setItem("test.locale", "en");
  http.handlers = [];
  http.calls = [];
  role.current = "admin";
});
afterEach(cleanup);

describe("strings", () => {
  it("has every fleet key used by the fleet files, in both locales", () => {
    const root = join(__dirname, "../src/console");
    const files = [
      ...readdirSync(join(root, "fleet")).map((f) => join(root, "fleet", f)),
      ...["GatewaysPage", "GatewayDetailPage", "AgentsPage", "H5UsersPage", "JobsPage"].map((p) =>
        join(root, "pages", `${p}.tsx`),
      ),
    ];
    const used = new Set<string>();
    const dynamic: Record<string, string[]> = {
      "fleet.gwStatus.": ["pending", "online", "offline", "error"],
      "fleet.agentStatus.": ["online", "offline", "busy", "error"],
      "fleet.h5Status.": ["active", "suspended", "deleted"],
      "fleet.jobState.": ["pending", "running", "completed", "dead", "cancelled"],
      "fleet.priority.": ["critical", "high", "medium", "low"],
      "fleet.jobs.tab.": ["jobs", "dead", "schedules"],
      "fleet.tokens.state.": ["active", "expired", "revoked"],
    };
    for (const f of files) {
      const src = readFileSync(f, "utf8");
      for (const m of src.matchAll(/"(fleet\.[A-Za-z0-9_.]+)"/g)) used.add(m[1]);
      for (const m of src.matchAll(/`(fleet\.[A-Za-z0-9_.]+\.)\$\{/g)) {
        expect(dynamic[m[1]], `unknown dynamic key prefix ${m[1]}`).toBeDefined();
        for (const v of dynamic[m[1]]) used.add(m[1] + v);
      }
    }
    const en = fleetStrings.en as Record<string, string>;
    const zh = fleetStrings["zh-CN"] as Record<string, string>;
    const missing = [...used].filter((k) => !(k in en) || !(k in zh));
    expect(missing).toEqual([]);
  });
});

describe("GatewaysPage", () => {
  it("lists gateways with health and creates a registration token shown once", async () => {
    route("GET", "/api/v1/gateways", () => json({ items: [gateway], next_cursor: null }));
    const tokens: unknown[] = [];
    route("GET", "/api/v1/gateway-registry/tokens", () => json({ items: tokens, next_cursor: null }));
    route("POST", "/api/v1/gateway-registry/tokens", async (req) => {
      const body = (await req.json()) as { name: string | null; expires_in_days: number | null };
      const tk = { id: "t1", name: body.name ?? "registration token", created_at: now, expires_at: null };
      tokens.push({ ...tk, token_prefix: "gw_reg_ab", use_count: 0, last_used_at: null, revoked_at: null });
      return json({ ...tk, token: "gw_reg_abcdefSECRET" }, 201);
    });

    renderAt("/gateways", "/gateways", <GatewaysPage />);
    const row = await screen.findByTestId("gateway-row");
    expect(row.getAttribute("data-gateway-id")).toBe(gateway.id);
    expect(within(row).getByTestId("gateway-health").getAttribute("data-status")).toBe("online");
    expect(row.textContent).toContain("12.5%");

    fireEvent.click(await screen.findByTestId("token-create-open"));
    fireEvent.change(screen.getByTestId("token-name"), { target: { value: "Shanghai" } });
    fireEvent.change(screen.getByTestId("token-expires"), { target: { value: "30" } });
    fireEvent.click(screen.getByTestId("token-create-submit"));
    const secret = (await screen.findByTestId("token-secret")) as HTMLInputElement;
    expect(secret.value).toBe("gw_reg_abcdefSECRET");
    const post = http.calls.find((c) => c.method === "POST");
    expect(JSON.parse(post!.body)).toEqual({ name: "Shanghai", expires_in_days: 30 });

    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    fireEvent.click(screen.getByTestId("token-copy"));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith("gw_reg_abcdefSECRET"));

    fireEvent.click(screen.getByTestId("token-secret-done"));
    await waitFor(() => expect(screen.queryByTestId("token-secret")).toBeNull());
    // The list shows the prefix only; the secret is gone from the page.
    await screen.findByTestId("token-row");
    expect(document.body.textContent).not.toContain("SECRET");
  });

  it("hides management from viewers", async () => {
    role.current = "viewer";
    route("GET", "/api/v1/gateways", () => json({ items: [gateway], next_cursor: null }));
    renderAt("/gateways", "/gateways", <GatewaysPage />);
    await screen.findByTestId("gateway-row");
    expect(screen.queryByTestId("token-create-open")).toBeNull();
    expect(screen.queryByTestId("gateway-delete")).toBeNull();
  });
});

describe("GatewayDetailPage", () => {
  it("shows metrics as a sparkline and the live connections", async () => {
    route("GET", `/api/v1/gateways/${gateway.id}`, () => json(gateway));
    route("GET", `/api/v1/gateways/${gateway.id}/metrics`, () =>
      json([
        { recorded_at: now, active_sessions: 2, agent_count: 3, cpu_pct: 20, memory_mb: 300 },
        { recorded_at: now, active_sessions: 1, agent_count: 3, cpu_pct: 10, memory_mb: 250 },
      ]),
    );
    route("GET", `/api/v1/gateways/${gateway.id}/connections`, () =>
      json({
        relay_connections: [{ id: "c1", relay_instance: "relay-a", remote_addr: "10.0.0.2", connected_at: now }],
        chat_sessions: [],
      }),
    );
    route("GET", "/api/v1/agents", () =>
      json({
        items: [{ id: "a1", name: "sim-1", status: "online", current_load: 0, capabilities: [], created_at: now, updated_at: now }],
      }),
    );
    renderAt(`/gateways/${gateway.id}`, "/gateways/:gatewayId", <GatewayDetailPage />);
    expect((await screen.findByTestId("gateway-name")).textContent).toBe("office-sh");
    expect(await screen.findByTestId("sparkline-cpu_pct")).toBeTruthy();
    expect((await screen.findByTestId("metric-cpu_pct")).textContent).toBe("20.0%");
    expect(await screen.findByTestId("relay-connection-row")).toBeTruthy();
    expect((await screen.findByTestId("agent-row")).getAttribute("data-agent-id")).toBe("a1");
    const agentsCall = http.calls.find((c) => c.url.pathname === "/api/v1/agents");
    expect(agentsCall?.url.searchParams.get("gateway_id")).toBe(gateway.id);
  });
});

describe("AgentsPage", () => {
  it("filters by status on the server", async () => {
    route("GET", "/api/v1/agents", (_req, url) =>
      json({
        items: [
          { id: "a1", name: "sim-1", status: url.searchParams.get("status") ?? "online", current_load: 0, capabilities: [], created_at: now, updated_at: now },
        ],
      }),
    );
    route("GET", "/api/v1/boards", () => json({ items: [] }));
    route("GET", "/api/v1/gateways", () => json({ items: [] }));
    renderAt("/agents", "/agents", <AgentsPage />);
    await screen.findByTestId("agent-row");
    fireEvent.change(screen.getByTestId("agent-status-filter"), { target: { value: "offline" } });
    await waitFor(() =>
      expect(screen.getByTestId("agent-row").querySelector("[data-status]")?.getAttribute("data-status")).toBe("offline"),
    );
  });
});

describe("H5UsersPage", () => {
  it("searches on the server and assigns an agent on its board", async () => {
    const user = { id: "u1", organization_id: "org", username: "alice", status: "active", created_at: now };
    route("GET", "/api/v1/h5/users", () => json({ items: [user] }));
    const assignments: unknown[] = [];
    route("GET", "/api/v1/h5/users/u1", () =>
      json({ user, assignments, live: { connections: 0, instances: {} }, sessions: [] }),
    );
    route("GET", "/api/v1/agents", () =>
      json({
        items: [{ id: "a1", name: "sim-1", status: "online", board_id: "b1", current_load: 0, capabilities: [], created_at: now, updated_at: now }],
      }),
    );
    route("GET", "/api/v1/boards", () => json({ items: [{ id: "b1", name: "Support" }] }));
    route("POST", "/api/v1/h5/users/u1/assign", async (req) => {
      const body = (await req.json()) as { agent_id: string; board_id: string };
      assignments.push({
        id: "as1",
        agent_id: body.agent_id,
        agent_name: "sim-1",
        board_id: body.board_id,
        board_name: "Support",
        role: "user",
        assigned_at: now,
      });
      return json({ user, assignments });
    });

    renderAt("/h5-users", "/h5-users", <H5UsersPage />);
    await screen.findByTestId("h5user-row");
    fireEvent.change(screen.getByTestId("h5user-search"), { target: { value: "ali" } });
    await waitFor(() =>
      expect(http.calls.some((c) => c.url.pathname === "/api/v1/h5/users" && c.url.searchParams.get("q") === "ali")).toBe(true),
    );

    fireEvent.click(screen.getByTestId("h5user-assign-open"));
    const select = (await screen.findByTestId("h5user-assign-select")) as HTMLSelectElement;
    await waitFor(() => expect(select.querySelectorAll("option").length).toBe(2));
    fireEvent.change(select, { target: { value: "a1" } });
    // The agent's own board is chosen for the conversation.
    await waitFor(() => expect((screen.getByTestId("h5user-assign-board") as HTMLSelectElement).value).toBe("b1"));
    fireEvent.click(screen.getByTestId("h5user-assign-submit"));
    expect(await screen.findByTestId("h5user-assignment-row")).toBeTruthy();
    const post = http.calls.find((c) => c.method === "POST");
    expect(JSON.parse(post!.body)).toEqual({ agent_id: "a1", board_id: "b1" });
  });

  it("asks before suspending", async () => {
    const user = { id: "u1", organization_id: "org", username: "alice", status: "active", created_at: now };
    route("GET", "/api/v1/h5/users", () => json({ items: [user] }));
    route("POST", "/api/v1/h5/users/u1/suspend", () => json({ ...user, status: "suspended" }));
    renderAt("/h5-users", "/h5-users", <H5UsersPage />);
    fireEvent.click(await screen.findByTestId("h5user-suspend"));
    await screen.findByTestId("confirm-ok");
    expect(http.calls.some((c) => c.method === "POST")).toBe(false);
    fireEvent.click(screen.getByTestId("confirm-ok"));
    await waitFor(() => expect(http.calls.some((c) => c.url.pathname.endsWith("/suspend"))).toBe(true));
  });
});

describe("JobsPage", () => {
  it("shows queue depth, lists jobs and replays a dead letter after confirmation", async () => {
    route("GET", "/api/v1/queue/depth", () =>
      json([
        { priority: "high", state: "pending", count: 4 },
        { priority: "low", state: "dead", count: 1 },
      ]),
    );
    const job = {
      id: "j1",
      kind: "schedule.emit_event",
      queue: "default",
      state: "dead",
      priority: "low",
      attempts: 3,
      max_attempts: 3,
      payload: {},
      errors: [{ attempt: 3, error: "boom", at: now, worker: "w1" }],
      enqueued_at: now,
      run_at: now,
      timeout_ms: 30000,
    };
    route("GET", "/api/v1/jobs", () => json({ items: [job] }));
    route("GET", "/api/v1/jobs/dead-letter", () => json({ items: [job] }));
    route("POST", "/api/v1/jobs/dead-letter/replay", () => json({ replayed: 1 }));

    renderAt("/jobs", "/jobs", <JobsPage />);
    const depth = await screen.findByTestId("queue-depth");
    expect(within(depth).getByTestId("queue-depth-total-pending").textContent).toBe("4");
    expect((await screen.findByTestId("job-row")).getAttribute("data-job-id")).toBe("j1");

    fireEvent.click(screen.getByTestId("deadletter-tab"));
    const row = await screen.findByTestId("deadletter-row");
    expect(row.textContent).toContain("boom");
    fireEvent.click(within(row).getByTestId("deadletter-replay"));
    fireEvent.click(await screen.findByTestId("confirm-ok"));
    await waitFor(() => {
      const call = http.calls.find((c) => c.url.pathname === "/api/v1/jobs/dead-letter/replay");
      expect(call && JSON.parse(call.body)).toEqual({ ids: ["j1"] });
    });
  });

  it("exports dead letters through the authenticated client as a file", async () => {
    route("GET", "/api/v1/queue/depth", () => json([]));
    route("GET", "/api/v1/jobs", () => json({ items: [] }));
    route("GET", "/api/v1/jobs/dead-letter", () => json({ items: [] }));
    route("GET", "/api/v1/jobs/dead-letter/export", () =>
      new Response('{"id":"j1"}\n', { headers: { "content-type": "application/x-ndjson" } }),
    );
    const createObjectURL = vi.fn(() => "blob:x");
    Object.assign(URL, { createObjectURL, revokeObjectURL: vi.fn() });
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(() => undefined);
    renderAt("/jobs", "/jobs", <JobsPage />);
    fireEvent.click(await screen.findByTestId("deadletter-tab"));
    fireEvent.click(await screen.findByTestId("deadletter-export"));
    await waitFor(() => expect(click).toHaveBeenCalled());
    const blob = (createObjectURL.mock.calls[0] as unknown as [Blob])[0];
    expect(await blob.text()).toBe('{"id":"j1"}\n');
    click.mockRestore();
  });
});
