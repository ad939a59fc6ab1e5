// Lighthouse (mobile preset) on the H5 app, and (desktop preset) on the console's login
// page as the same-run comparison, in Debian's Chromium against the stack scripts/e2e
// started. Writes a Markdown table to MC_LIGHTHOUSE_REPORT (or stdout).
import { writeFileSync } from "node:fs";
import * as chromeLauncher from "chrome-launcher";
import lighthouse from "lighthouse";
import desktopConfig from "lighthouse/core/config/desktop-config.js";
import { BASE, env } from "./lib.mjs";

const targets = [
  { name: "H5 app (`/h5/`, mobile preset, throttled 4G)", url: `${BASE()}/h5/?org=demo`, config: undefined },
  { name: "console login (`/login`, desktop preset)", url: `${BASE()}/login`, config: desktopConfig },
];
const categories = ["performance", "accessibility", "best-practices"];

const chrome = await chromeLauncher.launch({
  chromePath: env("MC_CHROMIUM"),
  chromeFlags: ["--headless=new", ...(process.getuid?.() === 0 ? ["--no-sandbox"] : [])],
});
const rows = [];
try {
  for (const t of targets) {
    const result = await lighthouse(t.url, { port: chrome.port, output: "json", logLevel: "error", onlyCategories: categories }, t.config);
    const lhr = result.lhr;
    const score = (c) => Math.round((lhr.categories[c]?.score ?? 0) * 100);
    const audit = (a) => lhr.audits[a]?.displayValue ?? "—";
    rows.push(
      `| ${t.name} | ${score("performance")} | ${score("accessibility")} | ${score("best-practices")} | ${audit("first-contentful-paint")} | ${audit("largest-contentful-paint")} | ${audit("total-blocking-time")} | ${audit("total-byte-weight")} |`,
    );
    console.error(`${t.name}: performance ${score("performance")}, accessibility ${score("accessibility")}`);
  }
} finally {
  await chrome.kill();
}
const table = [
  "| Page | Performance | Accessibility | Best practices | FCP | LCP | TBT | Bytes |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...rows,
].join("\n");
if (process.env.MC_LIGHTHOUSE_REPORT) writeFileSync(process.env.MC_LIGHTHOUSE_REPORT, table + "\n");
else console.log(table);
