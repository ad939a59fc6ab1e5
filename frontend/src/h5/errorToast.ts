// Which socket errors the H5 app shows as a toast, and with which string.
import type { ErrorFrame } from "../shared/protocol/h5Chat";

/** The i18n key of the toast for an error frame's payload, or null when the message's
 * own bubble shows it (refused messages) or the close settles it (a refused re-auth). */
export function errorToastKey(e: Pick<ErrorFrame["payload"], "code" | "reason">): string | null {
  if (e.code === "RATE_LIMITED" && e.reason === "gateway_busy") return "error.GATEWAY_BUSY";
  if (e.code === "RATE_LIMITED" || e.code === "INTERNAL_ERROR" || e.code === "PAYLOAD_TOO_LARGE") {
    return `error.${e.code}`;
  }
  return null;
}
