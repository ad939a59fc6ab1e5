// Calls and query keys of the fleet pages (gateways, agents, H5 users, jobs). Every call
// goes through the console's typed api client (Bearer, org, silent refresh); request and
// response types are the ones generated from docs/openapi.json.
import { useInfiniteQuery, type QueryKey } from "@tanstack/react-query";
import type { Schema } from "../../shared/api/client";
import { api, unwrap } from "../api";
import type { AgentStatus, GatewayStatus, H5UserStatus, JobPriority, JobState, Page } from "./types";

/** "" (an unset select or search box) means "no filter". */
const opt = <T extends string>(v: T | "" | undefined): T | undefined => (v ? v : undefined);

export const keys = {
  gateways: ["fleet", "gateways"] as const,
  gatewayList: (status: string) => ["fleet", "gateways", "list", status] as const,
  gateway: (id: string) => ["fleet", "gateways", "one", id] as const,
  gatewayMetrics: (id: string) => ["fleet", "gateways", "metrics", id] as const,
  gatewayLive: (id: string) => ["fleet", "gateways", "live", id] as const,
  tokens: ["fleet", "tokens"] as const,
  agents: ["fleet", "agents"] as const,
  agentList: (f: AgentFilter) => ["fleet", "agents", "list", f] as const,
  allAgents: ["fleet", "agents", "all"] as const,
  allGateways: ["fleet", "gateways", "all"] as const,
  boards: ["fleet", "boards"] as const,
  h5users: ["fleet", "h5users"] as const,
  h5userList: (f: H5UserFilter) => ["fleet", "h5users", "list", f] as const,
  h5user: (id: string) => ["fleet", "h5users", "one", id] as const,
  jobs: ["fleet", "jobs"] as const,
  depth: ["fleet", "jobs", "depth"] as const,
  jobList: (f: JobFilter) => ["fleet", "jobs", "list", f] as const,
  job: (id: string) => ["fleet", "jobs", "one", id] as const,
  deadLetters: (kind: string) => ["fleet", "jobs", "dead", kind] as const,
  schedules: ["fleet", "schedules"] as const,
};

const PAGE = 50;

// ---- gateways ----

export const listGateways = async (status: GatewayStatus | "", cursor?: string) =>
  unwrap(await api.GET("/api/v1/gateways", { params: { query: { status: opt(status), limit: PAGE, cursor } } }));

/** Every gateway (bounded), for pickers and names. */
export const allGateways = () => drain((cursor) => listGateways("", cursor));

export const getGateway = async (id: string) =>
  unwrap(await api.GET("/api/v1/gateways/{id}", { params: { path: { id } } }));

export const deleteGateway = async (id: string): Promise<void> => {
  unwrap(await api.DELETE("/api/v1/gateways/{id}", { params: { path: { id } } }));
};

/** Newest first, as the API returns them. */
export const gatewayMetricsHistory = async (id: string, limit = 60) =>
  unwrap(await api.GET("/api/v1/gateways/{id}/metrics", { params: { path: { id }, query: { limit } } }));

export const gatewayConnections = async (id: string) =>
  unwrap(await api.GET("/api/v1/gateways/{id}/connections", { params: { path: { id } } }));

export const syncAgents = async (id: string) =>
  unwrap(await api.POST("/api/v1/gateways/{id}/sync-agents", { params: { path: { id } } }));

export const rotateRelayToken = async (id: string, graceSeconds?: number) =>
  unwrap(
    await api.POST("/api/v1/gateways/{id}/rotate-relay-token", {
      params: { path: { id } },
      body: { grace_seconds: graceSeconds ?? null },
    }),
  );

export const listTokens = async (cursor?: string) =>
  unwrap(await api.GET("/api/v1/gateway-registry/tokens", { params: { query: { limit: PAGE, cursor } } }));

export const createToken = async (body: { name?: string; expires_in_days?: number }) =>
  unwrap(
    await api.POST("/api/v1/gateway-registry/tokens", {
      body: { name: body.name?.trim() || null, expires_in_days: body.expires_in_days ?? null },
    }),
  );

export const revokeToken = async (id: string): Promise<void> => {
  unwrap(await api.DELETE("/api/v1/gateway-registry/tokens/{id}", { params: { path: { id } } }));
};

// ---- agents and boards ----

export interface AgentFilter {
  status: AgentStatus | "";
  gateway_id: string;
  board_id: string;
}

export const listAgents = async (f: Partial<AgentFilter>, cursor?: string, limit = PAGE) =>
  unwrap(
    await api.GET("/api/v1/agents", {
      params: {
        query: {
          status: opt(f.status),
          gateway_id: opt(f.gateway_id),
          board_id: opt(f.board_id),
          limit,
          cursor,
        },
      },
    }),
  );

/** Every agent (bounded), for pickers and the gateway page. */
export const allAgents = (f: Partial<AgentFilter> = {}) => drain((cursor) => listAgents(f, cursor, 100));

/** The fields the agent form sends (a subset of the generated `CreateAgent`). */
export type AgentInput = Pick<Schema<"CreateAgent">, "name" | "board_id" | "gateway_id" | "openclaw_agent_id">;

export const createAgent = async (body: AgentInput) => unwrap(await api.POST("/api/v1/agents", { body }));

export const updateAgent = async (id: string, body: Pick<Schema<"UpdateAgent">, "name" | "board_id">) =>
  unwrap(await api.PATCH("/api/v1/agents/{id}", { params: { path: { id } }, body }));

export const deleteAgent = async (id: string): Promise<void> => {
  unwrap(await api.DELETE("/api/v1/agents/{id}", { params: { path: { id } } }));
};

export const allBoards = () =>
  drain(async (cursor) => unwrap(await api.GET("/api/v1/boards", { params: { query: { limit: 100, cursor } } })));

// ---- H5 users ----

export interface H5UserFilter {
  q: string;
  status: H5UserStatus | "";
}

export const listH5Users = async (f: H5UserFilter, cursor?: string) =>
  unwrap(
    await api.GET("/api/v1/h5/users", {
      params: { query: { q: opt(f.q.trim()), status: opt(f.status), limit: PAGE, cursor } },
    }),
  );

export const getH5User = async (id: string) =>
  unwrap(await api.GET("/api/v1/h5/users/{id}", { params: { path: { id } } }));

export type H5UserInput = Schema<"H5CreateUser">;

export const createH5User = async (body: H5UserInput) => unwrap(await api.POST("/api/v1/h5/users", { body }));

export const setH5UserStatus = async (id: string, action: "suspend" | "activate") => {
  const init = { params: { path: { id } } };
  return unwrap(
    action === "suspend"
      ? await api.POST("/api/v1/h5/users/{id}/suspend", init)
      : await api.POST("/api/v1/h5/users/{id}/activate", init),
  );
};

export const assignAgent = async (id: string, agentId: string, boardId: string) =>
  unwrap(
    await api.POST("/api/v1/h5/users/{id}/assign", {
      params: { path: { id } },
      body: { agent_id: agentId, board_id: boardId },
    }),
  );

export const unassignAgent = async (id: string, agentId: string): Promise<void> => {
  unwrap(
    await api.DELETE("/api/v1/h5/users/{id}/assign/{agent_id}", {
      params: { path: { id, agent_id: agentId } },
    }),
  );
};

// ---- jobs ----

export interface JobFilter {
  state: JobState | "";
  kind: string;
  priority: JobPriority | "";
}

export const queueDepth = async () => unwrap(await api.GET("/api/v1/queue/depth"));

export const listJobs = async (f: JobFilter, cursor?: string) =>
  unwrap(
    await api.GET("/api/v1/jobs", {
      params: {
        query: { state: opt(f.state), kind: opt(f.kind.trim()), priority: opt(f.priority), limit: PAGE, cursor },
      },
    }),
  );

export const getJob = async (id: string) => unwrap(await api.GET("/api/v1/jobs/{id}", { params: { path: { id } } }));

export const retryJob = async (id: string) =>
  unwrap(await api.POST("/api/v1/jobs/{id}/retry", { params: { path: { id } } }));

export const cancelJob = async (id: string) =>
  unwrap(await api.POST("/api/v1/jobs/{id}/cancel", { params: { path: { id } } }));

export const listDeadLetters = async (kind: string, cursor?: string) =>
  unwrap(
    await api.GET("/api/v1/jobs/dead-letter", {
      params: { query: { kind: opt(kind.trim()), limit: PAGE, cursor } },
    }),
  );

/** Replays the given dead letters, or (no ids) every dead letter of `kind` (or all). */
export async function replayDeadLetters(req: { ids?: string[]; kind?: string }): Promise<number> {
  const body: Schema<"ReplayRequest"> = req.ids?.length ? { ids: req.ids } : { kind: opt(req.kind?.trim()) ?? null };
  const res = unwrap(await api.POST("/api/v1/jobs/dead-letter/replay", { body }));
  return res.replayed;
}

/** The NDJSON export as a Blob: the endpoint needs the Bearer header, so no plain link. */
export const exportDeadLetters = async (kind: string) =>
  unwrap(
    await api.GET("/api/v1/jobs/dead-letter/export", {
      params: { query: { kind: opt(kind.trim()) } },
      parseAs: "blob",
    }),
  );

export const listSchedules = async (cursor?: string) =>
  unwrap(await api.GET("/api/v1/schedules", { params: { query: { limit: PAGE, cursor } } }));

// ---- helpers ----

/** Follows cursors to the end (bounded: pickers do not need more than 1000 rows). */
async function drain<T>(fetchPage: (cursor?: string) => Promise<Page<T>>, max = 1000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    out.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor && out.length < max);
  return out;
}

/** A cursor-paginated list as one array plus "load more". */
export function useCursorList<T>(
  queryKey: QueryKey,
  fetchPage: (cursor?: string) => Promise<Page<T>>,
  options: { refetchInterval?: number; enabled?: boolean } = {},
) {
  const q = useInfiniteQuery({
    queryKey,
    queryFn: ({ pageParam }) => fetchPage(pageParam),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: options.refetchInterval,
    enabled: options.enabled,
  });
  return {
    items: q.data?.pages.flatMap((p) => p.items) ?? [],
    isPending: q.isPending,
    error: q.error,
    hasMore: q.hasNextPage,
    loadingMore: q.isFetchingNextPage,
    loadMore: () => void q.fetchNextPage(),
    refetch: () => void q.refetch(),
    isFetching: q.isFetching,
  };
}
