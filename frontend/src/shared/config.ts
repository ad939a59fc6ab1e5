// Where the browser finds the relay's WebSockets. mc-api tells us at
// /api/v1/client-config; an empty relay_url means "same origin" (a reverse proxy or the
// Vite dev server forwards /ws).

export interface ClientConfig {
  relay_url: string;
}

let cached: Promise<ClientConfig> | null = null;

/** The deployment's client settings, fetched once. */
export function clientConfig(): Promise<ClientConfig> {
  cached ??= fetch("/api/v1/client-config")
    .then((r) => (r.ok ? (r.json() as Promise<ClientConfig>) : { relay_url: "" }))
    .catch(() => ({ relay_url: "" }));
  return cached;
}

/** Absolute ws(s):// URL of a relay path such as `/ws/h5/chat`. */
export async function relayUrl(path: string): Promise<string> {
  const { relay_url } = await clientConfig();
  if (relay_url) return relay_url.replace(/\/$/, "") + path;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}
