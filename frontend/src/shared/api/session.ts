// Token storage and silent refresh shared by the console and the H5 app. Each app keeps
// its own session (different secrets, different refresh endpoints) under its own key.

/** What a login or refresh hands back. */
export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

/** A stored session: tokens plus when the access token expires (ms since epoch). */
export interface StoredSession extends Tokens {
  expires_at: number;
  org_id?: string | null;
}

type Listener = (session: StoredSession | null) => void;

/** One app's session: persisted in localStorage, refreshed once at a time. */
export class SessionStore {
  private current: StoredSession | null;
  private listeners = new Set<Listener>();
  private refreshing: Promise<StoredSession | null> | null = null;

  constructor(
    private readonly key: string,
    private readonly refreshPath: string,
  ) {
    this.current = SessionStore.load(key);
  }

  private static load(key: string): StoredSession | null {
    try {
      const raw = globalThis.localStorage?.getItem(key);
      return raw ? (JSON.parse(raw) as StoredSession) : null;
    } catch {
      return null;
    }
  }

  get(): StoredSession | null {
    return this.current;
  }

  /** Stores tokens from a login, refresh or org switch. */
  set(tokens: Tokens & { organization_id?: string | null }): StoredSession {
    const session: StoredSession = {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_in: tokens.expires_in,
      expires_at: Date.now() + tokens.expires_in * 1000,
      org_id: tokens.organization_id ?? this.current?.org_id ?? null,
    };
    this.current = session;
    globalThis.localStorage?.setItem(this.key, JSON.stringify(session));
    this.emit();
    return session;
  }

  clear(): void {
    this.current = null;
    globalThis.localStorage?.removeItem(this.key);
    this.emit();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit() {
    for (const l of this.listeners) l(this.current);
  }

  /** An access token valid for at least 30 more seconds, refreshing if needed. */
  async accessToken(): Promise<string | null> {
    const s = this.current;
    if (!s) return null;
    if (s.expires_at - Date.now() > 30_000) return s.access_token;
    const fresh = await this.refresh();
    return fresh?.access_token ?? null;
  }

  /**
   * Rotates the refresh token. Concurrent callers share one request: presenting the same
   * refresh token twice would look like reuse and revoke the whole family.
   */
  refresh(): Promise<StoredSession | null> {
    if (this.refreshing) return this.refreshing;
    const s = this.current;
    if (!s) return Promise.resolve(null);
    this.refreshing = (async () => {
      try {
        const res = await fetch(this.refreshPath, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ refresh_token: s.refresh_token }),
        });
        if (res.status === 401 || res.status === 403) {
          this.clear();
          return null;
        }
        if (!res.ok) return null;
        return this.set(await res.json());
      } catch {
        return null;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }
}
