// Wire types of the H5 chat WebSocket (`/ws/h5/chat`, docs/h5-chat.md;
// crates/mc-relay/src/h5_chat.rs is the truth). Client payloads are checked with
// `deny_unknown_fields` on the server, so they carry exactly these fields.

/** Who wrote a stored message. */
export type ChatRole = "user" | "agent";

/** Where a stored message is in its life (lowercase on the wire). */
export type MessageStatus = "received" | "sent" | "failed" | "completed" | "error" | "aborted";

/** A session and the last seq a client has seen of it. */
export interface ResumePoint {
  session_id: string;
  last_seq: number;
}

// ---- client → server -------------------------------------------------------------

export interface AuthFrame {
  type: "auth";
  id?: string;
  payload: { token: string; resume?: ResumePoint[] };
}

export interface ChatFrame {
  type: "chat";
  /** The client message id: a retry with the same id is stored once. */
  id: string;
  payload: { agent_id: string; content: string; session_id?: string };
}

export interface ResumeFrame {
  type: "resume";
  id?: string;
  payload: ResumePoint;
}

export interface HeartbeatFrame {
  type: "heartbeat";
  id?: string;
}

export type ClientFrame = AuthFrame | ChatFrame | ResumeFrame | HeartbeatFrame;

// ---- server → client -------------------------------------------------------------

export interface Assignment {
  agent_id: string;
  agent_name: string;
  board_id: string;
  board_name: string;
  online: boolean;
}

/** `auth_ok`: the first one carries assignments and sessions; a re-auth only `refreshed`. */
export interface AuthOkFrame {
  type: "auth_ok";
  id?: string;
  payload: {
    user_id: string;
    assignments?: Assignment[];
    sessions?: ResumePoint[];
    refreshed?: boolean;
  };
}

export interface AuthErrorFrame {
  type: "auth_error";
  payload: { reason: string };
}

/** A stored message as the socket delivers it. */
export interface StoredMessagePayload {
  agent_id: string;
  session_id: string;
  message_id: string;
  role: ChatRole;
  content: string;
  status: MessageStatus;
  run_id: string | null;
  created_at: string;
}

export interface ChatMessageFrame {
  type: "chat";
  /** The message's client id (`run:{runId}` for an agent reply). */
  id: string;
  seq: number;
  payload: StoredMessagePayload;
  timestamp?: string;
}

export interface ChatDeltaFrame {
  type: "chat.delta";
  /** The last stored seq of the session (deltas are not stored). */
  seq: number;
  payload: {
    agent_id: string;
    session_id: string;
    run_id: string;
    role: "agent";
    delta: string;
    /** All the text so far. */
    content: string;
  };
}

export interface ResumedFrame {
  type: "resumed";
  id?: string;
  seq?: number;
  payload: ResumePoint;
}

export interface SystemFrame {
  type: "system";
  payload: { event: "agent_online" | "agent_offline"; agent_id: string };
}

export interface HeartbeatEcho {
  type: "heartbeat";
  id?: string;
  timestamp?: string;
}

/** Error codes the relay sends in `error` frames. */
export type ChatErrorCode =
  | "INVALID_MESSAGE"
  | "MESSAGE_TOO_LARGE"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "CONFLICT"
  | "RATE_LIMITED"
  | "AGENT_UNAVAILABLE"
  | "PAYLOAD_TOO_LARGE"
  | "UNAUTHORIZED"
  | "INTERNAL_ERROR";

export interface ErrorFrame {
  type: "error";
  /** The client frame id it answers, when known. */
  id?: string;
  /** Set when a stored message failed (`AGENT_UNAVAILABLE` after storing). */
  seq?: number;
  payload: {
    code: ChatErrorCode | string;
    message: string;
    agent_id?: string;
    session_id?: string;
    message_id?: string;
    retry_after_ms?: number;
    /** With `RATE_LIMITED`: `gateway_busy` when the agent's gateway has too many
     * messages waiting (nothing was stored; the client sends it again). */
    reason?: "gateway_busy" | string;
  };
}

export type ServerFrame =
  | AuthOkFrame
  | AuthErrorFrame
  | ChatMessageFrame
  | ChatDeltaFrame
  | ResumedFrame
  | SystemFrame
  | HeartbeatEcho
  | ErrorFrame;

/** Close codes the relay uses. */
export const CLOSE_AUTH = 4001;
export const CLOSE_SUSPENDED = 4003;
export const CLOSE_POLICY = 4008;
export const CLOSE_RESTART = 1012;
