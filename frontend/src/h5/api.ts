// The H5 app's singletons: its own session (H5 tokens, H5 refresh endpoint), the typed
// API client bound to it, and the chat socket client.
import { createApiClient, type Schema } from "../shared/api/client";
import { ApiError, unwrap } from "../shared/api/errors";
import { SessionStore } from "../shared/api/session";
import { relayUrl } from "../shared/config";
import { ChatClient } from "../shared/ws/chatClient";

export const session = new SessionStore("mc.h5.session", "/api/v1/h5/auth/refresh");
export const api = createApiClient(session);
export const chat = new ChatClient({ url: () => relayUrl("/ws/h5/chat"), session });
export { ApiError, unwrap };

/** The organization last signed in to (prefills the login form). */
export const LAST_ORG_KEY = "mc.h5.org";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Signs in; the organization may be given by slug or by id. */
export async function login(org: string, username: string, password: string): Promise<void> {
  const o = org.trim();
  const body: Schema<"H5Login"> = UUID.test(o)
    ? { organization_id: o, username: username.trim(), password }
    : { organization_slug: o.toLowerCase(), username: username.trim(), password };
  // No session exists while signing in, so the client adds no token and never refreshes.
  const res = unwrap(await api.POST("/api/v1/h5/auth/login", { body }));
  session.set({ ...res, organization_id: res.user.organization_id });
  try {
    localStorage.setItem(LAST_ORG_KEY, o);
  } catch {
    // private mode: nothing to remember
  }
}

/** Newest-first page of a session's messages (no `after_seq`: that is for catching up). */
export async function loadMessages(sessionId: string, cursor?: string) {
  return unwrap(
    await api.GET("/api/v1/h5/chat/sessions/{id}/messages", {
      params: { path: { id: sessionId }, query: { limit: 50, cursor } },
    }),
  );
}

/** The user's conversations, most recent activity first. */
export async function loadSessions() {
  return unwrap(await api.GET("/api/v1/h5/chat/sessions", { params: { query: { limit: 100 } } }));
}

/**
 * Ends the login on the server (this access token and the refresh token's family), then
 * locally. A network failure still signs out here; the tokens then simply expire.
 */
export async function logout(): Promise<void> {
  const refresh = session.get()?.refresh_token;
  if (refresh) {
    await api.POST("/api/v1/h5/auth/logout", { body: { refresh_token: refresh } }).catch(() => undefined);
  }
  session.clear();
}
