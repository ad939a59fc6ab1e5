// A rule's action config (actions.rs) as form fields and back. A config the form cannot
// reproduce exactly (extra keys, unusual values) is edited as JSON instead.
import type { AcceptAction, ActionType } from "./catalog";
import type { Json } from "./conditionBuilder";

type Obj = { [k: string]: Json };

export interface ActionForm {
  /** Edited as JSON text (`json`) or with the form fields below. */
  mode: "form" | "json";
  json: string;
  suggestion_type: string;
  title: string;
  /** Suggestion description or notification body. */
  description: string;
  priority: string;
  confidence: string;
  subject: string;
  expires_in_hours: string;
  /** Whether `on_accept` is written out (the default is `{"action": "none"}`). */
  acceptExplicit: boolean;
  accept: AcceptAction;
  acceptTaskId: string;
  acceptPriority: string;
  acceptTaskIds: string;
  acceptAgentId: string;
  acceptBoardId: string;
  acceptTitle: string;
  acceptDescription: string;
  channel: string;
  recipients: string;
  agent_id: string;
  strategy: string;
}

export function emptyActionForm(): ActionForm {
  return {
    mode: "form",
    json: "{}",
    suggestion_type: "deadline_alert",
    title: "",
    description: "",
    priority: "medium",
    confidence: "",
    subject: "",
    expires_in_hours: "",
    acceptExplicit: true,
    accept: "none",
    acceptTaskId: "{task.id}",
    acceptPriority: "critical",
    acceptTaskIds: "",
    acceptAgentId: "",
    acceptBoardId: "{task.board_id}",
    acceptTitle: "",
    acceptDescription: "",
    channel: "in_app",
    recipients: "admin",
    agent_id: "",
    strategy: "",
  };
}

const str = (v: Json | undefined): string => (typeof v === "string" ? v : v === undefined || v === null ? "" : JSON.stringify(v));

/** `task_ids` as text: a one-placeholder string, a comma list, or JSON for the rest. */
function taskIdsText(v: Json | undefined): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((i) => typeof i === "string" && !i.includes(",") && !i.startsWith("{"))) {
    return v.join(", ");
  }
  return v === undefined ? "" : JSON.stringify(v);
}

function taskIdsValue(text: string): Json {
  const t = text.trim();
  if (t.startsWith("[")) {
    try {
      return JSON.parse(t) as Json;
    } catch {
      /* read as a list */
    }
  }
  if (/^\{[^{}]*\}$/.test(t)) return t;
  return t
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Stable JSON for comparing configs regardless of key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObj(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Reads a stored config into the form, falling back to JSON when the form would lose something. */
export function actionFormFrom(type: ActionType, config: unknown): ActionForm {
  const f = emptyActionForm();
  const c: Obj = isObj(config) ? config : {};
  if (type === "create_suggestion") {
    f.suggestion_type = str(c.suggestion_type);
    f.title = str(c.title);
    f.description = str(c.description);
    f.priority = str(c.priority);
    f.confidence = c.confidence === undefined ? "" : str(c.confidence);
    f.subject = str(c.subject);
    f.expires_in_hours = c.expires_in_hours === undefined ? "" : str(c.expires_in_hours);
    f.acceptExplicit = c.on_accept !== undefined;
    const a: Obj = isObj(c.on_accept) ? c.on_accept : { action: "none" };
    f.accept = (str(a.action) || "none") as AcceptAction;
    if (a.task_id !== undefined) f.acceptTaskId = str(a.task_id);
    if (a.priority !== undefined) f.acceptPriority = str(a.priority);
    else if (f.accept === "create_task") f.acceptPriority = "";
    f.acceptTaskIds = taskIdsText(a.task_ids);
    f.acceptAgentId = str(a.agent_id);
    if (a.board_id !== undefined) f.acceptBoardId = str(a.board_id);
    f.acceptTitle = str(a.title);
    f.acceptDescription = str(a.description);
  } else if (type === "send_notification") {
    f.title = str(c.title);
    f.description = str(c.body);
    f.channel = str(c.channel);
    f.recipients = Array.isArray(c.recipients) ? c.recipients.map(str).join(", ") : str(c.recipients);
    f.subject = str(c.subject);
  } else {
    f.agent_id = str(c.agent_id);
    f.strategy = str(c.strategy);
  }
  const back = actionConfigOf(type, f);
  if (canonical(back) !== canonical(isObj(config) ? config : {})) {
    return { ...f, mode: "json", json: JSON.stringify(config ?? {}, null, 2) };
  }
  return f;
}

function numberOr(text: string): Json {
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

/** The config the API takes (JSON mode: the parsed text; throws SyntaxError when it is not JSON). */
export function actionConfigOf(type: ActionType, f: ActionForm): Json {
  if (f.mode === "json") return JSON.parse(f.json) as Json;
  const out: Obj = {};
  const opt = (key: string, v: string) => {
    if (v.trim() !== "") out[key] = v;
  };
  if (type === "create_suggestion") {
    out.suggestion_type = f.suggestion_type;
    out.title = f.title;
    opt("description", f.description);
    opt("priority", f.priority);
    if (f.confidence.trim() !== "") out.confidence = numberOr(f.confidence);
    opt("subject", f.subject);
    if (f.expires_in_hours.trim() !== "") out.expires_in_hours = numberOr(f.expires_in_hours);
    const a: Obj = { action: f.accept };
    if (f.accept === "set_priority") {
      a.task_id = f.acceptTaskId;
      a.priority = f.acceptPriority;
    } else if (f.accept === "assign_tasks") {
      a.task_ids = taskIdsValue(f.acceptTaskIds);
      a.agent_id = f.acceptAgentId;
    } else if (f.accept === "create_task") {
      a.board_id = f.acceptBoardId;
      a.title = f.acceptTitle;
      if (f.acceptDescription.trim()) a.description = f.acceptDescription;
      if (f.acceptPriority.trim()) a.priority = f.acceptPriority;
    }
    if (f.acceptExplicit || f.accept !== "none") out.on_accept = a;
  } else if (type === "send_notification") {
    out.title = f.title;
    opt("body", f.description);
    opt("channel", f.channel);
    const recipients = f.recipients
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (recipients.length) out.recipients = recipients;
    opt("subject", f.subject);
  } else {
    opt("agent_id", f.agent_id);
    opt("strategy", f.strategy);
  }
  return out;
}
