// The board page wired to a fake relay socket and a stubbed API: live state, quick
// create, drag and drop, revert on error, the disconnected banner and the task slide-over.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { dictionaries } from "../src/console/i18n";
import { BoardPage } from "../src/console/pages/BoardPage";
import { ConfirmProvider } from "../src/console/ui/Confirm";
import { ToastProvider } from "../src/console/ui/Toasts";
import { I18nProvider } from "../src/shared/i18n";
import { makeBoard, makeTask } from "./fixtures";

const apiCalls = vi.hoisted(() => [] as { method: string; path: string; opts: unknown }[]);
const board = makeBoard({ name: "Launch plan" });
const task = makeTask;

vi.mock("../src/console/api", async () => {
  const { unwrap } = await import("../src/shared/api/errors");
  const answer = (data: unknown, status = 200) => ({ data, response: new Response(null, { status: status === 204 ? 204 : status }) });
  const handle = (method: string) => async (path: string, opts: unknown) => {
    apiCalls.push({ method, path, opts });
    if (path === "/api/v1/boards/{id}/state") return new Promise(() => undefined); // the socket wins
    if (path.endsWith("/comments") || path === "/api/v1/approvals" || path === "/api/v1/agents" || path === "/api/v1/members") {
      return answer({ items: [] });
    }
    return answer({});
  };
  return {
    api: { GET: handle("GET"), POST: handle("POST"), PATCH: handle("PATCH"), DELETE: handle("DELETE") },
    unwrap,
    session: { accessToken: async () => "tok", get: () => ({ org_id: "o1" }) },
  };
});
vi.mock("../src/console/auth", () => ({
  useAuth: () => ({ role: "admin" }),
  useCanWrite: () => true,
  useRoleAtLeast: () => true,
}));
vi.mock("../src/shared/config", () => ({ relayUrl: async (p: string) => `ws://relay${p}` }));
vi.mock("../src/console/suggestions/Strip", () => ({ SuggestionStrip: () => null }));

class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  push(frame: object) {
    act(() => this.onmessage?.({ data: JSON.stringify(frame) }));
  }
}

const actor = { id: "u1", name: "Ada", type: "user" };

async function mount() {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={qc}>
      <I18nProvider dictionaries={dictionaries} storageKey="test.locale">
        <ToastProvider>
          <ConfirmProvider>
            <MemoryRouter initialEntries={["/boards/b1"]}>
              <Routes>
                <Route path="/boards/:boardId" element={<BoardPage />} />
              </Routes>
            </MemoryRouter>
          </ConfirmProvider>
        </ToastProvider>
      </I18nProvider>
    </QueryClientProvider>,
  );
  await act(async () => {
    await new Promise((r) => setTimeout(r, 0));
  });
  const ws = FakeSocket.all[FakeSocket.all.length - 1];
  expect(ws.url).toBe("ws://relay/ws/board/b1/sync");
  act(() => {
    ws.readyState = 1;
    ws.onopen?.();
  });
  ws.push({ type: "auth_ok", board_id: "b1", actor, seq: 10 });
  ws.push({
    type: "board.state",
    board,
    tasks: [task("a", { position: 1024 }), task("b", { position: 2048 }), task("c", { status: "review" })],
    seq: 10,
    timestamp: "",
  });
  return ws;
}

function dataTransfer() {
  const store = new Map<string, string>();
  return {
    setData: (k: string, v: string) => store.set(k, v),
    getData: (k: string) => store.get(k) ?? "",
    effectAllowed: "all",
    dropEffect: "none",
  };
}

const column = (status: string) => document.querySelector<HTMLElement>(`[data-testid="kanban-column"][data-status="${status}"]`)!;
const cardIds = (status: string) =>
  [...column(status).querySelectorAll<HTMLElement>('[data-testid="task-card"]')].map((e) => e.dataset.taskId);

beforeEach(() => {
  FakeSocket.all = [];
  apiCalls.length = 0;
  vi.stubGlobal("WebSocket", FakeSocket);
});
afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("BoardPage", () => {
  it("shows the live board in five columns", async () => {
    const ws = await mount();
    expect(ws.sent[0]).toEqual({ type: "auth", token: "tok", org_id: "o1" });
    expect(screen.getAllByTestId("kanban-column").map((c) => c.dataset.status)).toEqual(["todo", "in_progress", "review", "done", "blocked"]);
    expect(cardIds("todo")).toEqual(["a", "b"]);
    expect(cardIds("review")).toEqual(["c"]);
    expect(screen.getByTestId("sync-live")).toBeTruthy();
    expect(screen.queryByTestId("sync-banner")).toBeNull();
    expect(screen.getByTestId("board-title").textContent).toBe("Launch plan");
  });

  it("quick-creates over the socket and shows the task at once", async () => {
    const ws = await mount();
    const input = within(column("in_progress")).getByTestId("quick-create-input");
    fireEvent.change(input, { target: { value: "Write docs" } });
    fireEvent.submit(input.closest("form")!);
    const sent = ws.sent[ws.sent.length - 1];
    expect(sent).toMatchObject({ type: "task.create", title: "Write docs", status: "in_progress" });
    expect(within(column("in_progress")).getByText("Write docs")).toBeTruthy();
    ws.push({ type: "ack", id: sent.id, task: task("n", { title: "Write docs", status: "in_progress" }) });
    expect(cardIds("in_progress")).toEqual(["n"]);
  });

  it("drags a card to another column, and reverts when the server refuses", async () => {
    const ws = await mount();
    const dt = dataTransfer();
    const card = document.querySelector('[data-task-id="a"]')!;
    fireEvent.dragStart(card, { dataTransfer: dt });
    fireEvent.dragOver(column("done"), { dataTransfer: dt });
    fireEvent.drop(column("done"), { dataTransfer: dt });
    const sent = ws.sent[ws.sent.length - 1];
    expect(sent).toMatchObject({ type: "task.move", task_id: "a", status: "done", position: 1024 });
    expect(cardIds("done")).toEqual(["a"]);
    ws.push({ type: "error", id: sent.id, code: "CONFLICT", message: "needs evidence", details: [] });
    expect(cardIds("done")).toEqual([]);
    expect(cardIds("todo")).toEqual(["a", "b"]);
    expect(screen.getByTestId("toast-error").textContent).toContain("needs evidence");
  });

  it("drops onto a card to reorder within a column (midpoint position)", async () => {
    const ws = await mount();
    ws.push({ type: "task.created", seq: 11, task: task("d", { position: 3072 }), created_by: actor, timestamp: "" });
    const dt = dataTransfer();
    fireEvent.dragStart(document.querySelector('[data-task-id="d"]')!, { dataTransfer: dt });
    // jsdom has no layout: the pointer counts as the card's top half, so "before b".
    const target = document.querySelector('[data-task-id="b"]')!.closest("li")!;
    fireEvent.dragOver(target, { dataTransfer: dt, clientY: -1 });
    fireEvent.drop(target, { dataTransfer: dt, clientY: -1 });
    expect(ws.sent[ws.sent.length - 1]).toMatchObject({ type: "task.move", task_id: "d", status: "todo", position: 1536 });
    expect(cardIds("todo")).toEqual(["a", "d", "b"]);
  });

  it("shows the banner when the socket drops", async () => {
    const ws = await mount();
    act(() => ws.onclose?.({ code: 1012, reason: "restart" }));
    expect(screen.getByTestId("sync-banner")).toBeTruthy();
    expect(screen.queryByTestId("sync-live")).toBeNull();
  });

  it("opens the task slide-over, moves by select and comments", async () => {
    const ws = await mount();
    fireEvent.click(document.querySelector('[data-task-id="b"]')!);
    const detail = screen.getByTestId("task-detail");
    expect((within(detail).getByTestId("task-title-input") as HTMLInputElement).value).toBe("Task b");
    fireEvent.change(within(detail).getByTestId("task-status-select"), { target: { value: "review" } });
    expect(ws.sent[ws.sent.length - 1]).toMatchObject({ type: "task.move", task_id: "b", status: "review" });
    expect(cardIds("review")).toEqual(["c", "b"]);

    fireEvent.change(within(detail).getByTestId("comment-input"), { target: { value: "Looks good" } });
    await act(async () => {
      fireEvent.click(within(detail).getByTestId("comment-submit"));
      await new Promise((r) => setTimeout(r, 0));
    });
    expect(apiCalls.some((c) => c.method === "POST" && c.path === "/api/v1/tasks/{id}/comments")).toBe(true);
  });
});
