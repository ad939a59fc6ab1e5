// Service worker of the H5 chat app (scope /h5/): keeps the app shell available offline.
// - navigations: network first (a new deploy is picked up at once), the cached
//   index.html when the network is down;
// - /h5/assets/*: cache first (file names carry content hashes, so they never change);
// - /api and /ws are never cached or even touched: chat data must be live.
const VERSION = "v1";
const CACHE = `mc-h5-shell-${VERSION}`;
const BASE = "/h5/";
const INDEX = `${BASE}index.html`;
const STATIC = [`${BASE}manifest.webmanifest`, `${BASE}icon.svg`, `${BASE}icon-192.png`, `${BASE}icon-512.png`];

/** The hashed assets an index.html references. */
function assetsOf(html) {
  const found = new Set();
  for (const m of html.matchAll(/(?:src|href)="(\/h5\/assets\/[^"]+)"/g)) found.add(m[1]);
  return [...found];
}

/** Stores index.html and what it references; drops assets of older builds. */
async function cacheShell(response) {
  const cache = await caches.open(CACHE);
  const html = await response.clone().text();
  await cache.put(INDEX, response);
  const assets = assetsOf(html);
  await Promise.all(
    assets.map(async (url) => {
      if (!(await cache.match(url))) {
        const r = await fetch(url);
        if (r.ok) await cache.put(url, r);
      }
    }),
  );
  // Lazily loaded chunks are cached as they are used; only prune what is clearly stale
  // (an entry JS/CSS no longer referenced by the new index.html).
  const keep = new Set(assets);
  for (const request of await cache.keys()) {
    const path = new URL(request.url).pathname;
    if (path.startsWith(`${BASE}assets/index-`) && !keep.has(path)) await cache.delete(request);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(STATIC).catch(() => undefined);
      const response = await fetch(BASE, { cache: "no-store" });
      if (response.ok) await cacheShell(response);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("mc-h5-") && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/ws/")) return;
  if (request.headers.get("upgrade") === "websocket") return;

  if (request.mode === "navigate") {
    event.respondWith(
      (async () => {
        try {
          const response = await fetch(request);
          if (response.ok && url.pathname.startsWith(BASE)) {
            event.waitUntil(cacheShell(response.clone()).catch(() => undefined));
          }
          return response;
        } catch {
          const cached = await caches.match(INDEX);
          return cached ?? Response.error();
        }
      })(),
    );
    return;
  }

  if (url.pathname.startsWith(`${BASE}assets/`)) {
    event.respondWith(
      (async () => {
        const cache = await caches.open(CACHE);
        const cached = await cache.match(request);
        if (cached) return cached;
        const response = await fetch(request);
        if (response.ok) event.waitUntil(cache.put(request, response.clone()));
        return response;
      })(),
    );
    return;
  }

  if (STATIC.includes(url.pathname)) {
    // Small files that rarely change: the network, the cache when offline.
    event.respondWith(
      fetch(request)
        .then((response) => {
          if (response.ok) {
            const copy = response.clone();
            event.waitUntil(caches.open(CACHE).then((c) => c.put(request, copy)));
          }
          return response;
        })
        .catch(async () => (await caches.match(request)) ?? Response.error()),
    );
  }
});
