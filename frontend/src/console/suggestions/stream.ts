// One suggestion stream per tab, shared by the bell and every board's strip: a
// module-level, reference-counted SseStream on GET /api/v1/suggestions/stream. Each event
// invalidates the ["suggestions"] queries so every list refetches; listeners may also react
// to the suggestion itself (the bell's badge, for instance).
import { useEffect, useState } from "react";
import { openSse, ticketFetcher, type SseStatus, type SseStream } from "../../shared/sse";
import { api, queryClient } from "../api";
import { useAuth } from "../auth";
import { keys, type Suggestion } from "./data";

export interface SuggestionStreamEvent {
  type: "suggestion.new" | "suggestion.updated";
  suggestion: Suggestion;
}
type Listener = (e: SuggestionStreamEvent) => void;

let stream: SseStream | null = null;
let streamOrg: string | null = null;
let refs = 0;
let closeTimer: ReturnType<typeof setTimeout> | null = null;
let status: SseStatus = "closed";
const listeners = new Set<Listener>();
const statusListeners = new Set<(s: SseStatus) => void>();

function setStatus(s: SseStatus) {
  status = s;
  for (const l of statusListeners) l(s);
}

function start(orgId: string) {
  stream?.close();
  streamOrg = orgId;
  // Sequence numbers are per organization: a new org starts from "now", not from our last id.
  stream = openSse({
    url: "/api/v1/suggestions/stream",
    fetchTicket: ticketFetcher(api),
    onStatus: setStatus,
  });
  for (const type of ["suggestion.new", "suggestion.updated"] as const) {
    stream.on<SuggestionStreamEvent>(type, (msg) => {
      void queryClient.invalidateQueries({ queryKey: keys.suggestions });
      const suggestion = msg.data?.suggestion;
      if (!suggestion) return;
      for (const l of listeners) l({ type, suggestion });
    });
  }
}

function acquire(orgId: string): () => void {
  if (closeTimer) {
    clearTimeout(closeTimer);
    closeTimer = null;
  }
  refs += 1;
  if (!stream || streamOrg !== orgId) start(orgId);
  return () => {
    refs -= 1;
    if (refs > 0) return;
    // Linger briefly: a remount (route change, StrictMode) should not cost a new ticket.
    closeTimer = setTimeout(() => {
      closeTimer = null;
      if (refs === 0) {
        stream?.close();
        stream = null;
        streamOrg = null;
      }
    }, 2000);
  };
}

/**
 * Keeps the shared suggestion stream open while mounted (for the current organization)
 * and calls `onEvent` for each new or changed suggestion. Returns the stream status.
 */
export function useSuggestionStream(onEvent?: Listener): SseStatus {
  const { orgId } = useAuth();
  const [current, setCurrent] = useState<SseStatus>(status);
  useEffect(() => {
    if (!orgId) return;
    return acquire(orgId);
  }, [orgId]);
  useEffect(() => {
    statusListeners.add(setCurrent);
    return () => {
      statusListeners.delete(setCurrent);
    };
  }, []);
  useEffect(() => {
    if (!onEvent) return;
    listeners.add(onEvent);
    return () => {
      listeners.delete(onEvent);
    };
  }, [onEvent]);
  return current;
}
