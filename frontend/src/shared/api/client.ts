// The typed API client: generated types (schema.d.ts, from docs/openapi.json) plus a
// middleware that adds the access token and organization and retries once after a
// silent refresh when the server says 401.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";
import type { SessionStore } from "./session";

export type { paths, components } from "./schema";
/** Shorthand for a component schema: `Schema<"Task">`. */
export type Schema<N extends keyof import("./schema").components["schemas"]> =
  import("./schema").components["schemas"][N];

/** A typed client bound to one app's session. */
export function createApiClient(session: SessionStore, baseUrl = "") {
  const client = createClient<paths>({ baseUrl });
  // A copy of each request to replay after a refresh: fetch consumes the original's body.
  const copies = new WeakMap<Request, Request>();
  const auth: Middleware = {
    async onRequest({ request }) {
      const token = await session.accessToken();
      if (token && !request.headers.has("authorization")) {
        request.headers.set("authorization", `Bearer ${token}`);
      }
      const org = session.get()?.org_id;
      if (org && !request.headers.has("x-org-id")) request.headers.set("x-org-id", org);
      if (session.get()) copies.set(request, request.clone());
      return request;
    },
    async onResponse({ request, response }) {
      const copy = copies.get(request);
      if (response.status !== 401 || !copy) return response;
      const fresh = await session.refresh();
      if (!fresh) return response;
      copy.headers.set("authorization", `Bearer ${fresh.access_token}`);
      return fetch(copy);
    },
  };
  client.use(auth);
  return client;
}

export type ApiClient = ReturnType<typeof createApiClient>;
