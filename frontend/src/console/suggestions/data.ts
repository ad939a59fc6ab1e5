// Reads for suggestions, rules and the event log, plus the lookups (board and rule names)
// the lists show. GET /events and GET /suggestions share the operationId "list" with other
// endpoints in docs/openapi.json, so the generated client types them as the agents list;
// `getPage` calls them with their real query and page types instead.
import type { Schema } from "../../shared/api/client";
import { api, unwrap } from "../api";
import type { Priority, SuggestionStatus, SuggestionType } from "../rules/catalog";

export type Suggestion = Schema<"Suggestion">;
export type Rule = Schema<"Rule">;
export type LogEvent = Schema<"Event">;

export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
  total?: number | null;
}

export interface SuggestionQuery {
  status?: SuggestionStatus;
  board_id?: string;
  priority?: Priority;
  suggestion_type?: SuggestionType;
  agent_id?: string;
  limit?: number;
  cursor?: string;
}

export interface EventQuery {
  board_id?: string;
  task_id?: string;
  agent_id?: string;
  actor_id?: string;
  event_type?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

type Query = Record<string, string | number | undefined>;

/** Drops empty filters so they are not sent as `?board_id=`. */
function clean(q: Query): Query {
  const out: Query = {};
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") out[k] = v;
  return out;
}

async function getPage<T>(path: "/api/v1/events" | "/api/v1/suggestions", query: Query): Promise<Page<T>> {
  const res = await api.GET(path, { params: { query: clean(query) as never } });
  return unwrap(res as unknown as { data?: Page<T>; error?: unknown; response: Response });
}

export function fetchSuggestions(q: SuggestionQuery): Promise<Page<Suggestion>> {
  return getPage<Suggestion>("/api/v1/suggestions", { ...q });
}

export function fetchEvents(q: EventQuery): Promise<Page<LogEvent>> {
  return getPage<LogEvent>("/api/v1/events", { ...q });
}

/** Query keys; everything suggestion-shaped lives under ["suggestions"]. */
export const keys = {
  suggestions: ["suggestions"] as const,
  suggestionList: (q: SuggestionQuery) => ["suggestions", "list", q] as const,
  rules: ["rules"] as const,
  ruleList: (q: object) => ["rules", "list", q] as const,
  ruleNames: ["rules", "names"] as const,
  boardNames: ["insight", "boardNames"] as const,
  events: (q: EventQuery) => ["events", "list", q] as const,
};

/** id → name of the organization's boards (first 100; enough to label lists). */
export async function fetchBoardNames(): Promise<Map<string, string>> {
  const page = unwrap(await api.GET("/api/v1/boards", { params: { query: { limit: 100 } } }));
  return new Map(page.items.map((b) => [b.id, b.name]));
}

/** id → name of the organization's rules (first 100). */
export async function fetchRuleNames(): Promise<Map<string, string>> {
  const page = unwrap(await api.GET("/api/v1/proactive-rules", { params: { query: { limit: 100 } } }));
  return new Map(page.items.map((r) => [r.id, r.name]));
}
