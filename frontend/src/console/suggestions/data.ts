// Reads for suggestions, rules and the event log, plus the lookups (board and rule names)
// the lists show. Request and response types are generated from docs/openapi.json.
import type { paths, Schema } from "../../shared/api/client";
import { api, unwrap } from "../api";

export type Suggestion = Schema<"Suggestion">;
export type Rule = Schema<"Rule">;
export type LogEvent = Schema<"Event">;

export type SuggestionQuery = NonNullable<paths["/api/v1/suggestions"]["get"]["parameters"]["query"]>;
export type EventQuery = NonNullable<paths["/api/v1/events"]["get"]["parameters"]["query"]>;

/** Drops empty filters (an unset select or search box) so they are not sent as `?board_id=`. */
function clean<Q extends object>(q: Q): Q {
  const out = { ...q };
  for (const k of Object.keys(out) as (keyof Q)[]) {
    if (out[k] === undefined || out[k] === "") delete out[k];
  }
  return out;
}

export async function fetchSuggestions(q: SuggestionQuery): Promise<Schema<"Page_Suggestion">> {
  return unwrap(await api.GET("/api/v1/suggestions", { params: { query: clean(q) } }));
}

export async function fetchEvents(q: EventQuery): Promise<Schema<"Page_Event">> {
  return unwrap(await api.GET("/api/v1/events", { params: { query: clean(q) } }));
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
