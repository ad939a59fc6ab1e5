// Sign-in: organization (from `?org=` or the last one used), username and password.
import { useState, type FormEvent } from "react";
import { useI18n } from "../shared/i18n";
import { ApiError, LAST_ORG_KEY, login } from "./api";
import { LangToggle } from "./ui";

function initialOrg(): string {
  const fromUrl = new URLSearchParams(location.search).get("org");
  if (fromUrl) return fromUrl;
  try {
    return localStorage.getItem(LAST_ORG_KEY) ?? "";
  } catch {
    return "";
  }
}

export function LoginScreen({ notice }: { notice?: string | null }) {
  const { t } = useI18n();
  const [org, setOrg] = useState(initialOrg);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(org, username, password);
    } catch (err) {
      setError(loginError(err, t));
      setBusy(false);
    }
  };

  return (
    <div className="screen login-screen">
      <header className="topbar">
        <h1 className="topbar-title">{t("app.title")}</h1>
        <LangToggle />
      </header>
      <main className="login-main">
        <form className="card login-card" onSubmit={submit} aria-labelledby="login-heading">
          <h2 id="login-heading">{t("login.heading")}</h2>
          <p className="muted">{t("login.subtitle")}</p>
          {notice && (
            <p className="notice" role="status">
              {notice}
            </p>
          )}
          <label className="field">
            <span>{t("login.org")}</span>
            <input
              name="organization"
              autoComplete="organization"
              autoCapitalize="none"
              autoCorrect="off"
              spellCheck={false}
              required
              value={org}
              onChange={(e) => setOrg(e.target.value)}
              aria-describedby="org-hint"
              data-testid="h5-login-org"
            />
            <small id="org-hint" className="muted">
              {t("login.orgHint")}
            </small>
          </label>
          <label className="field">
            <span>{t("login.username")}</span>
            <input
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              autoCorrect="off"
              spellCheck={false}
              required
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              data-testid="h5-login-username"
            />
          </label>
          <label className="field">
            <span>{t("login.password")}</span>
            <input
              name="password"
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              data-testid="h5-login-password"
            />
          </label>
          {error && (
            <p className="error-text" role="alert" data-testid="h5-login-error">
              {t("login.failed")}: {error}
            </p>
          )}
          <button className="primary block" type="submit" disabled={busy} data-testid="h5-login-submit">
            {busy ? t("login.busy") : t("login.submit")}
          </button>
        </form>
      </main>
    </div>
  );
}

function loginError(err: unknown, t: (k: string) => string): string {
  if (err instanceof ApiError) {
    if (err.status === 401 || err.status === 404) return t("login.badCredentials");
    if (err.status === 403) return t("login.suspended");
    if (err.status === 429) return t("login.rateLimited");
    return err.message;
  }
  return t("login.network");
}
