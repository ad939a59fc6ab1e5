import { QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter } from "react-router-dom";
import { I18nProvider } from "../shared/i18n";
import { queryClient } from "./api";
import { App } from "./App";
import { AuthProvider } from "./auth";
import { dictionaries } from "./i18n";
import "./styles.css";
import { applyTheme, initialTheme } from "./theme";
import { ConfirmProvider } from "./ui/Confirm";
import { ToastProvider } from "./ui/Toasts";

applyTheme(initialTheme());

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <I18nProvider dictionaries={dictionaries} storageKey="mc.console.locale">
        <ToastProvider>
          <ConfirmProvider>
            <BrowserRouter>
              <AuthProvider>
                <App />
              </AuthProvider>
            </BrowserRouter>
          </ConfirmProvider>
        </ToastProvider>
      </I18nProvider>
    </QueryClientProvider>
  </StrictMode>,
);
