// Where the browser finds the relay's WebSockets. mc-api tells us at
// /api/v1/client-config; an empty relay_url means "same origin" (a reverse proxy or the
// Vite dev server forwards /ws).
import createClient from "openapi-fetch";
import type { paths, Schema } from "./api/client";

export type ClientConfig = Schema<"ClientConfig">;

let cached: Promise<ClientConfig> | null = null;

/** The deployment's client settings, fetched once. */
export function clientConfig(): Promise<ClientConfig> {
  // A bare typed client: the endpoint is public and read before (and without) any session.
  // Created on first use, so it binds whatever `fetch` is current then.
  cached ??= createClient<paths>()
    .GET("/api/v1/client-config")
    .then(({ data, response }) => (response.ok && data ? data : { relay_url: "" }))
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
