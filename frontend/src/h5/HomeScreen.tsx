// The session list: the agents assigned to the user (live, from the socket's auth_ok)
// and their conversations (REST). Tapping either opens the chat.
import { useCallback, useEffect, useState } from "react";
import type { Schema } from "../shared/api/client";
import { useI18n } from "../shared/i18n";
import type { ChatSnapshot } from "../shared/ws/chatClient";
import { chat, loadSessions } from "./api";
import { ConnBanner, errorText, formatTime, LangToggle } from "./ui";

export interface ChatTarget {
  agentId: string;
  agentName: string;
  sessionId: string | null;
  closed?: boolean;
}

type Session = Schema<"ChatSession">;

export function HomeScreen({
  snap,
  onOpen,
  onLogout,
}: {
  snap: ChatSnapshot;
  onOpen: (target: ChatTarget) => void;
  onLogout: () => void;
}) {
  const { t, locale } = useI18n();
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const connected = snap.conn === "connected";

  const load = useCallback(async () => {
    setError(null);
    try {
      const page = await loadSessions();
      for (const s of page.items) chat.registerSession(s.id, s.agent_id);
      setSessions(page.items);
    } catch (err) {
      setError(errorText(err, t));
    }
  }, [t]);

  // Again on each (re)connection: a conversation may have started on another device.
  useEffect(() => {
    void load();
  }, [load, connected]);

  const sessionOf = (agentId: string) =>
    sessions?.find((s) => s.agent_id === agentId && s.status === "active")?.id ?? chat.sessionOfAgent(agentId);
  const lastText = (id: string) => {
    const msgs = snap.sessions[id]?.messages;
    return msgs?.length ? msgs[msgs.length - 1].content : null;
  };
  const pendingFor = (agentId: string) =>
    snap.outbox.filter((i) => i.agentId === agentId && i.retrySeq === undefined).length;

  return (
    <div className="screen">
      <header className="topbar">
        <h1 className="topbar-title">{t("home.heading")}</h1>
        <LangToggle />
        <button type="button" className="ghost small" onClick={onLogout} data-testid="h5-logout">
          {t("logout")}
        </button>
      </header>
      <ConnBanner snap={snap} />
      <main className="home-main">
        <section aria-labelledby="agents-heading">
          <h2 id="agents-heading" className="section-title">
            {t("home.agents")}
          </h2>
          {snap.assignments === null ? (
            <ul className="list" aria-busy="true">
              <li className="skeleton-row" />
              <li className="skeleton-row" />
            </ul>
          ) : snap.assignments.length === 0 ? (
            <p className="empty" data-testid="h5-agents-empty">
              {t("home.noAgents")}
            </p>
          ) : (
            <ul className="list">
              {snap.assignments.map((a) => {
                const pending = pendingFor(a.agent_id);
                return (
                  <li key={a.agent_id}>
                    <button
                      type="button"
                      className="list-item"
                      onClick={() =>
                        onOpen({ agentId: a.agent_id, agentName: a.agent_name, sessionId: sessionOf(a.agent_id) })
                      }
                      data-testid="h5-agent-item"
                      data-agent-id={a.agent_id}
                      data-online={a.online ? "true" : "false"}
                    >
                      <span className="avatar" aria-hidden="true">
                        {initial(a.agent_name)}
                        <span className={`presence ${a.online ? "on" : "off"}`} />
                      </span>
                      <span className="item-body">
                        <span className="item-title">{a.agent_name}</span>
                        <span className="item-sub muted">
                          {a.online ? t("home.online") : t("home.offline")} · {t("home.board", { name: a.board_name })}
                        </span>
                      </span>
                      {pending > 0 && <span className="badge warn">{t("home.pending", { count: pending })}</span>}
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
        </section>

        <section aria-labelledby="sessions-heading">
          <h2 id="sessions-heading" className="section-title">
            {t("home.sessions")}
          </h2>
          {error ? (
            <div className="error-box" role="alert">
              <p>
                {t("home.loadFailed")}: {error}
              </p>
              <button type="button" className="small" onClick={() => void load()} data-testid="h5-sessions-retry">
                {t("home.retry")}
              </button>
            </div>
          ) : sessions === null ? (
            <ul className="list" aria-busy="true">
              <li className="skeleton-row" />
            </ul>
          ) : sessions.length === 0 ? (
            <p className="empty" data-testid="h5-sessions-empty">
              {t("home.noSessions")}
            </p>
          ) : (
            <ul className="list">
              {sessions.map((s) => {
                const preview = lastText(s.id);
                return (
                  <li key={s.id}>
                    <button
                      type="button"
                      className="list-item"
                      onClick={() =>
                        onOpen({
                          agentId: s.agent_id,
                          agentName: s.agent_name,
                          sessionId: s.id,
                          closed: s.status !== "active",
                        })
                      }
                      data-testid="h5-session-item"
                      data-session-id={s.id}
                      data-agent-id={s.agent_id}
                    >
                      <span className="avatar" aria-hidden="true">
                        {initial(s.agent_name)}
                      </span>
                      <span className="item-body">
                        <span className="item-title">{s.agent_name}</span>
                        <span className="item-sub muted">
                          {preview ?? (s.last_seq > 0 ? t("home.lastActive", { time: formatTime(s.last_message_at, locale) }) : t("home.noMessages"))}
                        </span>
                      </span>
                      <time className="item-time muted" dateTime={s.last_message_at ?? s.created_at}>
                        {formatTime(s.last_message_at ?? s.created_at, locale)}
                      </time>
                    </button>
                  </li>
                );
              })}
            </ul>
          )}
        </section>
      </main>
    </div>
  );
}

function initial(name: string): string {
  return (name.trim()[0] ?? "?").toUpperCase();
}
