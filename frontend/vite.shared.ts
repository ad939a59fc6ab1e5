// Settings both apps share: React, and the dev-server proxy to a running stack
// (scripts/dev: API on 8000, relay on 8001; override with MC_API_URL / MC_RELAY_URL).
import react from "@vitejs/plugin-react";
import type { UserConfig } from "vite";

const api = process.env.MC_API_URL ?? "http://127.0.0.1:8000";
const relay = process.env.MC_RELAY_URL ?? "ws://127.0.0.1:8001";

export function appConfig(name: "console" | "h5", base: string, port: number): UserConfig {
  return {
    root: `src/${name}`,
    base,
    publicDir: "public",
    plugins: [react()],
    build: {
      outDir: `../../dist/${name}`,
      emptyOutDir: true,
      sourcemap: true,
      assetsDir: "assets",
    },
    server: {
      port,
      strictPort: true,
      proxy: {
        "/api": { target: api, changeOrigin: true },
        "/ws": { target: relay, ws: true, changeOrigin: true },
      },
    },
  };
}
