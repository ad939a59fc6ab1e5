import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { I18nProvider } from "../shared/i18n";
import { App } from "./App";
import { dictionaries } from "./i18n";
import "./styles.css";
import { ToastProvider } from "./ui";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <I18nProvider dictionaries={dictionaries} storageKey="mc.h5.locale">
      <ToastProvider>
        <App />
      </ToastProvider>
    </I18nProvider>
  </StrictMode>,
);

// Offline app shell, production only: in development the service worker would serve
// stale modules to Vite's dev server.
if (import.meta.env.PROD && "serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register(`${import.meta.env.BASE_URL}sw.js`, { scope: import.meta.env.BASE_URL }).catch(() => {
      // Not fatal: the app works without offline caching.
    });
  });
}
