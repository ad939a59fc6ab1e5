import { defineConfig } from "vite";
import { appConfig } from "./vite.shared";

// The H5 chat app, served by mc-api at `/h5/`.
export default defineConfig(appConfig("h5", "/h5/", 3001));
