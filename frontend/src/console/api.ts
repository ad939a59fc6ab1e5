// The console's session and API client (admin JWTs; refresh at /api/v1/auth/refresh).
import { QueryClient } from "@tanstack/react-query";
import { createApiClient } from "../shared/api/client";
import { ApiError } from "../shared/api/errors";
import { SessionStore } from "../shared/api/session";

export const session = new SessionStore("mc.console.session", "/api/v1/auth/refresh");
export const api = createApiClient(session);
export { unwrap } from "../shared/api/errors";

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 10_000,
      // 4xx answers do not get better by asking again.
      retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
    },
  },
});
