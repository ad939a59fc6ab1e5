// Calls and query keys of the fleet pages (gateways, agents, H5 users, jobs), typed with
// ./types. Every call goes through the console's api client (Bearer, org, silent refresh).
import { useInfiniteQuery, type QueryKey } from "@tanstack/react-query";
import type { paths } from "../../shared/api/client";
import { api, unwrap } from "../api";
import type {
  Agent,
  AgentStatus,
  Board,
  CreatedRegistrationToken,
  DepthRow,
  Gateway,
  GatewayLive,
  GatewayStatus,
  H5User,
  H5UserLive,
  H5UserStatus,
  Job,
  JobPriority,
  JobState,
  LinkSummary,
  MetricsSample,
  Page,
  RegistrationToken,
  RotatedRelayToken,
  Schedule,
} from "./types";

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

// Why not `api.GET(...)` with the generated operation types: docs/openapi.json reuses
// operationIds across tags (`list`, `get`, `create`, `remove`, `rotate`, ...), so the
// generated `operations` interface keeps only the first of each and, for example, types
// GET /api/v1/jobs as the agents list. Paths are still checked against the contract; the
// shapes are the ones in ./types (generated components with wire-spelled enums).
type Method = "GET" | "POST" | "PATCH" | "DELETE";
type Query = Record<string, string | number | undefined>;
interface Init {
  params?: { path?: Record<string, string>; query?: Query };
  body?: unknown;
  parseAs?: "json" | "blob";
}
type Loose = Record<Method, (path: string, init?: Init) => Promise<{ data?: unknown; error?: unknown; response: Response }>>;
const loose = api as unknown as Loose;

async function call<T>(method: Method, path: keyof paths, init?: Init): Promise<T> {
  return unwrap(await loose[method](path, init)) as T;
}

// ---- gateways ----

export const listGateways = (status: GatewayStatus | "", cursor?: string) =>
  call<Page<Gateway>>("GET", "/api/v1/gateways", {
    params: { query: { status: opt(status), limit: PAGE, cursor } },
  });

/** Every gateway (bounded), for pickers and names. */
export const allGateways = () => drain((cursor) => listGateways("", cursor));

export const getGateway = (id: string) =>
  call<Gateway>("GET", "/api/v1/gateways/{id}", { params: { path: { id } } });

export const deleteGateway = (id: string) =>
  call<void>("DELETE", "/api/v1/gateways/{id}", { params: { path: { id } } });

/** Newest first, as the API returns them. */
export const gatewayMetricsHistory = (id: string, limit = 60) =>
  call<MetricsSample[]>("GET", "/api/v1/gateways/{id}/metrics", { params: { path: { id }, query: { limit } } });

export const gatewayConnections = (id: string) =>
  call<GatewayLive>("GET", "/api/v1/gateways/{id}/connections", { params: { path: { id } } });

export const syncAgents = (id: string) =>
  call<LinkSummary>("POST", "/api/v1/gateways/{id}/sync-agents", { params: { path: { id } } });

export const rotateRelayToken = (id: string, graceSeconds?: number) =>
  call<RotatedRelayToken>("POST", "/api/v1/gateways/{id}/rotate-relay-token", {
    params: { path: { id } },
    body: { grace_seconds: graceSeconds ?? null },
  });

export const listTokens = (cursor?: string) =>
  call<Page<RegistrationToken>>("GET", "/api/v1/gateway-registry/tokens", {
    params: { query: { limit: PAGE, cursor } },
  });

export const createToken = (body: { name?: string; expires_in_days?: number }) =>
  call<CreatedRegistrationToken>("POST", "/api/v1/gateway-registry/tokens", {
    body: { name: body.name?.trim() || null, expires_in_days: body.expires_in_days ?? null },
  });

export const revokeToken = (id: string) =>
  call<void>("DELETE", "/api/v1/gateway-registry/tokens/{id}", { params: { path: { id } } });

// ---- agents and boards ----

export interface AgentFilter {
  status: AgentStatus | "";
  gateway_id: string;
  board_id: string;
}

export const listAgents = (f: Partial<AgentFilter>, cursor?: string, limit = PAGE) =>
  call<Page<Agent>>("GET", "/api/v1/agents", {
    params: {
      query: {
        status: opt(f.status),
        gateway_id: opt(f.gateway_id),
        board_id: opt(f.board_id),
        limit,
        cursor,
      },
    },
  });

/** Every agent (bounded), for pickers and the gateway page. */
export const allAgents = (f: Partial<AgentFilter> = {}) => drain((cursor) => listAgents(f, cursor, 100));

export interface AgentInput {
  name: string;
  board_id: string | null;
  gateway_id?: string | null;
  openclaw_agent_id?: string | null;
}

export const createAgent = (body: AgentInput) => call<Agent>("POST", "/api/v1/agents", { body });

export const updateAgent = (id: string, body: { name?: string; board_id?: string | null }) =>
  call<Agent>("PATCH", "/api/v1/agents/{id}", { params: { path: { id } }, body });

export const deleteAgent = (id: string) =>
  call<void>("DELETE", "/api/v1/agents/{id}", { params: { path: { id } } });

export const allBoards = () =>
  drain((cursor) =>
    call<Page<Board>>("GET", "/api/v1/boards", { params: { query: { limit: 100, cursor } } }),
  );

// ---- H5 users ----

export interface H5UserFilter {
  q: string;
  status: H5UserStatus | "";
}

export const listH5Users = (f: H5UserFilter, cursor?: string) =>
  call<Page<H5User>>("GET", "/api/v1/h5/users", {
    params: { query: { q: opt(f.q.trim()), status: opt(f.status), limit: PAGE, cursor } },
  });

export const getH5User = (id: string) =>
  call<H5UserLive>("GET", "/api/v1/h5/users/{id}", { params: { path: { id } } });

export interface H5UserInput {
  username: string;
  password: string;
  display_name?: string | null;
  email?: string | null;
  phone?: string | null;
}

export const createH5User = (body: H5UserInput) => call<H5User>("POST", "/api/v1/h5/users", { body });

export const setH5UserStatus = (id: string, action: "suspend" | "activate") =>
  call<H5User>(
    "POST",
    action === "suspend" ? "/api/v1/h5/users/{id}/suspend" : "/api/v1/h5/users/{id}/activate",
    { params: { path: { id } } },
  );

export const assignAgent = (id: string, agentId: string, boardId: string) =>
  call<unknown>("POST", "/api/v1/h5/users/{id}/assign", {
    params: { path: { id } },
    body: { agent_id: agentId, board_id: boardId },
  });

export const unassignAgent = (id: string, agentId: string) =>
  call<void>("DELETE", "/api/v1/h5/users/{id}/assign/{agent_id}", {
    params: { path: { id, agent_id: agentId } },
  });

// ---- jobs ----

export interface JobFilter {
  state: JobState | "";
  kind: string;
  priority: JobPriority | "";
}

export const queueDepth = () => call<DepthRow[]>("GET", "/api/v1/queue/depth");

export const listJobs = (f: JobFilter, cursor?: string) =>
  call<Page<Job>>("GET", "/api/v1/jobs", {
    params: {
      query: { state: opt(f.state), kind: opt(f.kind.trim()), priority: opt(f.priority), limit: PAGE, cursor },
    },
  });

export const getJob = (id: string) => call<Job>("GET", "/api/v1/jobs/{id}", { params: { path: { id } } });

export const retryJob = (id: string) =>
  call<Job>("POST", "/api/v1/jobs/{id}/retry", { params: { path: { id } } });

export const cancelJob = (id: string) =>
  call<Job>("POST", "/api/v1/jobs/{id}/cancel", { params: { path: { id } } });

export const listDeadLetters = (kind: string, cursor?: string) =>
  call<Page<Job>>("GET", "/api/v1/jobs/dead-letter", {
    params: { query: { kind: opt(kind.trim()), limit: PAGE, cursor } },
  });

/** Replays the given dead letters, or (no ids) every dead letter of `kind` (or all). */
export async function replayDeadLetters(req: { ids?: string[]; kind?: string }): Promise<number> {
  const body = req.ids?.length ? { ids: req.ids } : { kind: opt(req.kind?.trim()) ?? null };
  const res = await call<{ replayed: number }>("POST", "/api/v1/jobs/dead-letter/replay", { body });
  return res.replayed;
}

/** The NDJSON export as a Blob: the endpoint needs the Bearer header, so no plain link. */
export const exportDeadLetters = (kind: string) =>
  call<Blob>("GET", "/api/v1/jobs/dead-letter/export", {
    params: { query: { kind: opt(kind.trim()) } },
    parseAs: "blob",
  });

export const listSchedules = (cursor?: string) =>
  call<Page<Schedule>>("GET", "/api/v1/schedules", { params: { query: { limit: PAGE, cursor } } });

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
