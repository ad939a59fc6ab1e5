// The navigation shell: sidebar, top bar (org switcher, suggestion bell, theme, language,
// sign-out) and the page.
import { useState } from "react";
import { NavLink, Outlet } from "react-router-dom";
import { LOCALES, useI18n, type Locale } from "../shared/i18n";
import { useAuth } from "./auth";
import { SuggestionBell } from "./suggestions/Bell";
import { applyTheme, initialTheme, type Theme } from "./theme";
import { useToast } from "./ui/Toasts";

const NAV = [
  ["/boards", "nav.boards"],
  ["/gateways", "nav.gateways"],
  ["/agents", "nav.agents"],
  ["/h5-users", "nav.h5users"],
  ["/rules", "nav.rules"],
  ["/events", "nav.events"],
  ["/jobs", "nav.jobs"],
] as const;

export function Layout() {
  const { t, locale, setLocale } = useI18n();
  const { me, orgId, switchOrg, logout } = useAuth();
  const toast = useToast();
  const [theme, setTheme] = useState<Theme>(() => {
    const th = initialTheme();
    applyTheme(th);
    return th;
  });
  const toggleTheme = () => {
    const next = theme === "dark" ? "light" : "dark";
    applyTheme(next);
    setTheme(next);
  };
  return (
    <div className="shell">
      <nav className="sidebar" aria-label={t("nav.main")}>
        <div className="brand">{t("app.title")}</div>
        <ul>
          {NAV.map(([to, key]) => (
            <li key={to}>
              <NavLink to={to} data-testid={`nav-${to.slice(1)}`}>
                {t(key)}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <div className="main">
        <header className="topbar">
          <label className="inline">
            <span className="sr-only">{t("org.label")}</span>
            <select
              data-testid="org-switcher"
              value={orgId ?? ""}
              onChange={(e) => switchOrg(e.target.value).catch(toast.error)}
            >
              {me?.organizations.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.name}
                </option>
              ))}
            </select>
          </label>
          <div className="spacer" />
          <SuggestionBell />
          <button onClick={toggleTheme} data-testid="theme-toggle" title={t("theme.toggle")}>
            {theme === "dark" ? t("theme.light") : t("theme.dark")}
          </button>
          <label className="inline">
            <span className="sr-only">{t("locale.label")}</span>
            <select
              data-testid="locale-switcher"
              value={locale}
              onChange={(e) => setLocale(e.target.value as Locale)}
            >
              {LOCALES.map((l) => (
                <option key={l} value={l}>
                  {l === "en" ? "English" : "简体中文"}
                </option>
              ))}
            </select>
          </label>
          <span className="muted" data-testid="current-user">
            {me?.user.display_name ?? me?.user.email}
          </span>
          <button onClick={() => logout()} data-testid="logout">
            {t("auth.logout")}
          </button>
        </header>
        <main className="page">
          <Outlet />
        </main>
      </div>
    </div>
  );
}
