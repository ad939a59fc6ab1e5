#!/usr/bin/env bash
# The peer for `scripts/bench queue`: graphile-worker (npm) on the same PostgreSQL, same
# job count, no-op tasks, concurrency 64. Prints one Markdown row.
#   PG_ADMIN_URL=... MC_BENCH_JOBS=100000 scripts/lib/graphile-peer.sh WORKDIR
set -euo pipefail
dir="$1"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || npm init -y >/dev/null
npm install --no-audit --no-fund --silent graphile-worker@0 pg@8 >&2
cat >peer.js <<'JS'
const { run, makeWorkerUtils, Logger } = require("graphile-worker");
// Per-job log lines would cost the peer time and flood the report.
const logger = new Logger(() => () => {});
const { Pool } = require("pg");
const version = require("graphile-worker/package.json").version;
const connectionString = process.env.PG_ADMIN_URL;
const N = Number(process.env.MC_BENCH_JOBS || 100000);
(async () => {
  const utils = await makeWorkerUtils({ connectionString, logger });
  await utils.migrate();
  const pool = new Pool({ connectionString });
  let t0 = Date.now();
  for (let i = 0; i < N; i += 1000) {
    const specs = [];
    for (let k = 0; k < Math.min(1000, N - i); k++) specs.push({ identifier: "noop", payload: {} });
    await utils.addJobs(specs);
  }
  const enqueue = (Date.now() - t0) / 1000;
  t0 = Date.now();
  const runner = await run({
    connectionString, concurrency: 64, noHandleSignals: true, pollInterval: 200, logger,
    taskList: { noop: async () => {} },
  });
  for (;;) {
    // Stops at the first job left, as the Mission Control probe does.
    const r = await pool.query("SELECT EXISTS (SELECT 1 FROM graphile_worker.jobs) AS open");
    if (!r.rows[0].open) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  const drain = (Date.now() - t0) / 1000;
  await runner.stop();
  await utils.release();
  await pool.end();
  console.log(`| peer: graphile-worker ${version}, enqueue in batches of 1,000 then drain (concurrency 64) | ${N} | ${Math.round(N / enqueue)} jobs/s enqueue, ${Math.round(N / drain)} jobs/s drain |`);
})().catch((e) => { console.error(e); process.exit(1); });
JS
node peer.js
