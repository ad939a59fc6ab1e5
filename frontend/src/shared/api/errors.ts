// The API's error body (DESIGN.md §Conventions) as a thrown value.

/** `{"error":{"code","message","details"}}` from any 4xx/5xx. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** A failed API call: HTTP status, stable code and the server's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = "ApiError";
  }

  static from(status: number, body: unknown): ApiError {
    const e = (body as ErrorBody | undefined)?.error;
    if (e && typeof e.code === "string") return new ApiError(status, e.code, e.message, e.details);
    return new ApiError(status, status >= 500 ? "internal_error" : "invalid_request", `HTTP ${status}`);
  }
}

/** Unwraps an openapi-fetch result: the data, or throws the API's error. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || !result.response.ok) {
    throw ApiError.from(result.response.status, result.error);
  }
  return result.data as T;
}
