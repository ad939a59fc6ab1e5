// Fails when src/shared/api/schema.d.ts is not what docs/openapi.json generates
// (run `npm run api:gen` after `scripts/openapi`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "mc-api-"));
let fresh;
try {
  const out = join(dir, "schema.d.ts");
  execFileSync("npx", ["openapi-typescript", "../docs/openapi.json", "-o", out], { stdio: "ignore" });
  fresh = readFileSync(out, "utf8");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const committed = readFileSync("src/shared/api/schema.d.ts", "utf8");
if (fresh !== committed) {
  console.error("src/shared/api/schema.d.ts is stale: run `npm run api:gen` in frontend/");
  process.exit(1);
}
console.log("API client types match docs/openapi.json");
