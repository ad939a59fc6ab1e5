import { describe, expect, it } from "vitest";
import { errorToastKey } from "../src/h5/errorToast";
import { dictionaries } from "../src/h5/i18n";

describe("H5 error toasts", () => {
  it("says the agent is busy when its gateway refused the message, not that the user is too fast", () => {
    expect(errorToastKey({ code: "RATE_LIMITED", reason: "gateway_busy" })).toBe("error.GATEWAY_BUSY");
    expect(errorToastKey({ code: "RATE_LIMITED" })).toBe("error.RATE_LIMITED");
    for (const strings of Object.values(dictionaries)) {
      expect(strings["error.GATEWAY_BUSY"]).toBeTruthy();
      expect(strings["error.GATEWAY_BUSY"]).not.toBe(strings["error.RATE_LIMITED"]);
    }
  });

  it("leaves refusals shown in their bubble to the bubble", () => {
    expect(errorToastKey({ code: "FORBIDDEN" })).toBeNull();
    expect(errorToastKey({ code: "AGENT_UNAVAILABLE" })).toBeNull();
    expect(errorToastKey({ code: "INTERNAL_ERROR" })).toBe("error.INTERNAL_ERROR");
  });
});
