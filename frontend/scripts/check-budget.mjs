// The H5 app's JavaScript must stay within 200 KB gzipped (seed 000 M7), checked on
// every build: the sum of every .js file the build emits for it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 200 * 1024;
const root = "dist/h5";
let total = 0;
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".js")) total += gzipSync(readFileSync(path), { level: 9 }).length;
  }
};
walk(root);
const kb = (total / 1024).toFixed(1);
if (total > BUDGET) {
  console.error(`H5 JavaScript is ${kb} KB gzipped, over the 200 KB budget`);
  process.exit(1);
}
console.log(`H5 JavaScript: ${kb} KB gzipped (budget 200 KB)`);
