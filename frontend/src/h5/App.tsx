// The H5 app's shell: sign-in, the session list and the chat window, switched by state
// (no router; the browser's back button returns from a chat through history.state).
import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import { useI18n } from "../shared/i18n";
import { chat, logout as logoutOnServer, session } from "./api";
import { ChatScreen } from "./ChatScreen";
import { errorToastKey } from "./errorToast";
import { HomeScreen, type ChatTarget } from "./HomeScreen";
import { LoginScreen } from "./LoginScreen";
import { LangToggle, useToast } from "./ui";

type View = { screen: "home" } | { screen: "chat"; target: ChatTarget };

const HOME: View = { screen: "home" };

const subscribeSession = (onChange: () => void) => session.subscribe(onChange);

function viewFromHistory(state: unknown): View {
  const target = (state as { h5chat?: ChatTarget } | null)?.h5chat;
  return target ? { screen: "chat", target } : HOME;
}

export function App() {
  const { t, locale } = useI18n();
  const toast = useToast();
  const current = useSyncExternalStore(subscribeSession, () => session.get());
  const snap = useSyncExternalStore(chat.subscribe, chat.getSnapshot);
  const [view, setView] = useState<View>(() => viewFromHistory(history.state));
  const [notice, setNotice] = useState<string | null>(null);
  const signedIn = current !== null;

  useEffect(() => {
    document.documentElement.lang = locale;
  }, [locale]);

  // The socket lives while there is a session.
  useEffect(() => {
    if (signedIn) {
      setNotice(null);
      chat.start();
    } else {
      chat.stop();
    }
  }, [signedIn]);

  // The banner needs navigator.onLine; the client waits for the network instead of retrying.
  useEffect(() => {
    const update = () => {
      chat.setOnline(navigator.onLine);
      if (navigator.onLine) toast.success(t("online.back"));
    };
    window.addEventListener("online", update);
    window.addEventListener("offline", update);
    return () => {
      window.removeEventListener("online", update);
      window.removeEventListener("offline", update);
    };
  }, [t, toast]);

  // Back from the background: check the socket now rather than at the next heartbeat.
  useEffect(() => {
    const onVisible = () => {
      if (document.visibilityState === "visible") chat.poke();
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => document.removeEventListener("visibilitychange", onVisible);
  }, []);

  // Token refused even after a refresh: back to the sign-in form (the outbox is kept
  // for the same account).
  useEffect(
    () =>
      chat.on("signed_out", () => {
        setNotice(t("signedOut"));
        session.clear();
      }),
    [t],
  );

  // Socket errors the bubbles do not show themselves.
  useEffect(
    () =>
      chat.on("error", (e) => {
        const key = errorToastKey(e);
        if (key) {
          const text = t(key);
          toast.error(text === key ? e.message : text);
        }
      }),
    [t, toast],
  );

  useEffect(() => {
    const onPop = (e: PopStateEvent) => setView(viewFromHistory(e.state));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  const open = useCallback((target: ChatTarget) => {
    history.pushState({ h5chat: target }, "");
    setView({ screen: "chat", target });
  }, []);

  const back = useCallback(() => {
    if ((history.state as { h5chat?: unknown } | null)?.h5chat) history.back();
    else setView(HOME);
  }, []);

  const logout = useCallback(() => {
    const unsent = chat.getSnapshot().outbox.length;
    if (unsent > 0 && !window.confirm(t("logout.confirm", { count: unsent }))) return;
    chat.reset();
    void logoutOnServer();
    if (history.state) history.replaceState(null, "");
    setView(HOME);
    toast.success(t("logout.done"));
  }, [t, toast]);

  if (!current) return <LoginScreen notice={notice} />;

  if (snap.conn === "suspended") {
    return (
      <div className="screen">
        <header className="topbar">
          <h1 className="topbar-title">{t("app.title")}</h1>
          <LangToggle />
          <button type="button" className="ghost small" onClick={logout} data-testid="h5-logout">
            {t("logout")}
          </button>
        </header>
        <main className="login-main">
          <div className="card" role="alert" data-testid="h5-suspended">
            <h2>{t("conn.suspended")}</h2>
            <p className="muted">{t("suspended.body")}</p>
          </div>
        </main>
      </div>
    );
  }

  return view.screen === "chat" ? (
    <ChatScreen key={view.target.agentId} target={view.target} snap={snap} onBack={back} />
  ) : (
    <HomeScreen snap={snap} onOpen={open} onLogout={logout} />
  );
}
