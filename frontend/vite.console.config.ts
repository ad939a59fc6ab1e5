import { defineConfig } from "vite";
import { appConfig } from "./vite.shared";

// The admin console, served by mc-api at `/`.
export default defineConfig(appConfig("console", "/", 3000));
