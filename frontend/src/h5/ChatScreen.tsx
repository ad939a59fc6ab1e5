// One conversation: history from REST, then live frames from the chat client; the
// agent's reply streams in, the user's unsent messages wait in the outbox.
import { useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useI18n } from "../shared/i18n";
import type { ChatMessage, ChatSnapshot, OutboxItem } from "../shared/ws/chatClient";
import { chat, loadMessages } from "./api";
import type { ChatTarget } from "./HomeScreen";
import { bannerState, ConnBanner, errorText, formatTime, useToast } from "./ui";

/** The server's default CHAT_MAX_MESSAGE_CHARS; it answers MESSAGE_TOO_LARGE beyond its own. */
const MAX_CHARS = 8000;

export function ChatScreen({ target, snap, onBack }: { target: ChatTarget; snap: ChatSnapshot; onBack: () => void }) {
  const { t } = useI18n();
  const toast = useToast();
  // A first message creates the session; the client learns it from the echo.
  const sessionId = target.sessionId ?? chat.sessionOfAgent(target.agentId);
  const view = sessionId ? snap.sessions[sessionId] : undefined;
  const assignment = snap.assignments?.find((a) => a.agent_id === target.agentId);
  const name = assignment?.agent_name ?? target.agentName;
  const outbox = snap.outbox.filter(
    (i) => i.agentId === target.agentId && i.retrySeq === undefined && (!i.sessionId || i.sessionId === sessionId),
  );

  const [history, setHistory] = useState<{ loading: boolean; cursor: string | null; error: string | null }>({
    loading: !!sessionId,
    cursor: null,
    error: null,
  });

  const listRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const keepOffset = useRef<number | null>(null);

  // The newest page once per session; live frames continue from there.
  useEffect(() => {
    if (!sessionId) return;
    let cancelled = false;
    setHistory({ loading: true, cursor: null, error: null });
    loadMessages(sessionId)
      .then((page) => {
        if (cancelled) return;
        chat.mergeHistory(sessionId, target.agentId, page.items);
        setHistory({ loading: false, cursor: page.next_cursor ?? null, error: null });
      })
      .catch((err: unknown) => {
        if (cancelled) return;
        setHistory({ loading: false, cursor: null, error: errorText(err, t) });
      });
    return () => {
      cancelled = true;
    };
    // `t` only formats the error: a language switch must not reload the history.
  }, [sessionId, target.agentId]);

  const loadEarlier = async () => {
    if (!sessionId || !history.cursor) return;
    setHistory((h) => ({ ...h, loading: true }));
    try {
      const page = await loadMessages(sessionId, history.cursor);
      const el = listRef.current;
      keepOffset.current = el ? el.scrollHeight - el.scrollTop : null;
      chat.mergeHistory(sessionId, target.agentId, page.items);
      setHistory({ loading: false, cursor: page.next_cursor ?? null, error: null });
    } catch (err) {
      setHistory((h) => ({ ...h, loading: false }));
      toast.error(`${t("chat.historyFailed")}: ${errorText(err, t)}`);
    }
  };

  const messages = view?.messages ?? [];
  const streaming = view?.streaming ?? null;
  const typing = view?.typing ?? false;

  // Follow the conversation while the user is at the bottom; keep the place when older
  // messages are prepended.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el) return;
    if (keepOffset.current !== null) {
      el.scrollTop = el.scrollHeight - keepOffset.current;
      keepOffset.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages.length, outbox.length, streaming?.content, typing]);

  const onScroll = () => {
    const el = listRef.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
  };

  const discard = (item: OutboxItem) => {
    if (window.confirm(t("chat.discardConfirm"))) chat.discard(item.id);
  };

  const empty = !history.loading && !history.error && messages.length === 0 && outbox.length === 0 && !streaming;

  return (
    <div className="screen chat-screen">
      <header className="topbar">
        <button type="button" className="ghost icon-btn" onClick={onBack} aria-label={t("chat.back")} data-testid="h5-back">
          <span aria-hidden="true">‹</span>
        </button>
        <h1 className="topbar-title">
          {name}
          {assignment && (
            <span className={`presence-label ${assignment.online ? "on" : "off"}`}>
              {assignment.online ? t("home.online") : t("home.offline")}
            </span>
          )}
        </h1>
      </header>
      <ConnBanner snap={snap} />
      {assignment && !assignment.online && bannerState(snap) === "connected" && (
        <p className="agent-offline" role="note">
          {t("chat.agentOffline")}
        </p>
      )}
      <main className="chat-main">
        <div
          className="messages"
          ref={listRef}
          onScroll={onScroll}
          role="log"
          // Focusable, so keyboard users can scroll the conversation.
          tabIndex={0}
          aria-live="polite"
          aria-label={t("chat.messages")}
          aria-busy={history.loading}
          data-testid="chat-messages"
        >
          {history.cursor && (
            <button type="button" className="small load-earlier" onClick={() => void loadEarlier()} disabled={history.loading} data-testid="chat-load-earlier">
              {t("chat.loadEarlier")}
            </button>
          )}
          {history.loading && messages.length === 0 && (
            <div className="history-skeleton" aria-label={t("chat.loading")}>
              <div className="skeleton-bubble left" />
              <div className="skeleton-bubble right" />
              <div className="skeleton-bubble left" />
            </div>
          )}
          {history.error && (
            <p className="error-text" role="alert">
              {t("chat.historyFailed")}: {history.error}
            </p>
          )}
          {empty && <p className="empty">{t("chat.empty", { name })}</p>}
          {messages.map((m) => (
            <StoredBubble key={m.seq} m={m} />
          ))}
          {outbox.map((item) => (
            <OutboxBubble key={item.id} item={item} onDiscard={() => discard(item)} />
          ))}
          {streaming && (
            <div className="bubble-row agent" data-testid="chat-streaming" data-run-id={streaming.runId} aria-label={t("chat.streaming")}>
              <div className="bubble agent streaming">
                <p className="bubble-text">{streaming.content}</p>
              </div>
            </div>
          )}
          {typing && (
            <div className="typing" data-testid="typing-indicator" role="status">
              <span className="dots" aria-hidden="true">
                <i />
                <i />
                <i />
              </span>
              <span className="typing-text">{t("chat.typing", { name })}</span>
            </div>
          )}
        </div>
        <Composer
          disabled={!!target.closed}
          onSend={(text) => {
            chat.send(target.agentId, text, sessionId);
            stick.current = true;
            if (bannerState(chat.getSnapshot()) !== "connected") toast.info(t("chat.queued"));
          }}
        />
      </main>
    </div>
  );
}

function StoredBubble({ m }: { m: ChatMessage }) {
  const { t, locale } = useI18n();
  const mine = m.role === "user";
  const showStatus = mine || m.status === "error" || m.status === "aborted";
  return (
    <div
      className={`bubble-row ${mine ? "user" : "agent"}`}
      data-testid="chat-message"
      data-seq={m.seq}
      data-role={m.role}
      data-status={m.status}
      data-client-id={m.clientId}
    >
      <div className={`bubble ${mine ? "user" : "agent"} ${m.status}`}>
        <p className="bubble-text">{m.content}</p>
        <div className="bubble-meta">
          <time dateTime={m.createdAt}>{formatTime(m.createdAt, locale)}</time>
          {showStatus && <span className="status">{t(`chat.status.${m.status}`)}</span>}
        </div>
      </div>
      {m.status === "failed" && mine && (
        <div className="bubble-actions">
          <button type="button" className="small danger" onClick={() => chat.retry({ sessionId: m.sessionId, seq: m.seq })} data-testid="chat-retry">
            {t("chat.retry")}
          </button>
        </div>
      )}
    </div>
  );
}

function OutboxBubble({ item, onDiscard }: { item: OutboxItem; onDiscard: () => void }) {
  const { t, locale } = useI18n();
  const failed = item.state === "failed";
  return (
    <div className="bubble-row user" data-testid="chat-message" data-role="user" data-status={item.state} data-client-id={item.id}>
      <div className={`bubble user ${item.state}`}>
        <p className="bubble-text">{item.content}</p>
        <div className="bubble-meta">
          <time dateTime={item.createdAt}>{formatTime(item.createdAt, locale)}</time>
          <span className="status">{t(`chat.status.${failed ? "failed" : "pending"}`)}</span>
        </div>
        {failed && item.error && <p className="bubble-error">{t(`error.${item.error.code}`) === `error.${item.error.code}` ? item.error.message : t(`error.${item.error.code}`)}</p>}
      </div>
      {failed && (
        <div className="bubble-actions">
          <button type="button" className="small danger" onClick={() => chat.retry({ outboxId: item.id })} data-testid="chat-retry">
            {t("chat.retry")}
          </button>
          <button type="button" className="small ghost" onClick={onDiscard} data-testid="chat-discard">
            {t("chat.discard")}
          </button>
        </div>
      )}
    </div>
  );
}

function Composer({ disabled, onSend }: { disabled: boolean; onSend: (text: string) => void }) {
  const { t } = useI18n();
  const [text, setText] = useState("");
  const ref = useRef<HTMLTextAreaElement>(null);
  const tooLong = [...text].length > MAX_CHARS;
  const canSend = !disabled && text.trim().length > 0 && !tooLong;

  // Grow with the text up to a few lines.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 140)}px`;
  }, [text]);

  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    if (!canSend) return;
    onSend(text.trim());
    setText("");
    ref.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    // Enter sends on keyboards; on touch screens it is a newline. Never mid-IME (中文输入).
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing && !coarsePointer()) submit(e);
  };

  if (disabled) {
    return <p className="composer closed">{t("chat.closed")}</p>;
  }
  return (
    <form className="composer" onSubmit={submit}>
      <label className="visually-hidden" htmlFor="chat-input">
        {t("chat.input")}
      </label>
      <textarea
        id="chat-input"
        ref={ref}
        rows={1}
        value={text}
        placeholder={t("chat.placeholder")}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={onKeyDown}
        aria-invalid={tooLong}
        aria-describedby={tooLong ? "chat-too-long" : undefined}
        enterKeyHint="send"
        data-testid="chat-input"
      />
      <button type="submit" className="primary send-btn" disabled={!canSend} data-testid="chat-send">
        {t("chat.send")}
      </button>
      {tooLong && (
        <p id="chat-too-long" className="error-text composer-error" role="alert">
          {t("chat.tooLong", { max: MAX_CHARS })}
        </p>
      )}
    </form>
  );
}

function coarsePointer(): boolean {
  return typeof matchMedia === "function" && matchMedia("(pointer: coarse)").matches;
}
