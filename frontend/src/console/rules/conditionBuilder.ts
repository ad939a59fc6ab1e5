// The condition builder's UI model and its JSON condition tree (docs/proactivity.md,
// crates/mc-domain/src/proactivity/conditions.rs), both directions, plus client-side
// validation that mirrors the server's checks and paths (`conditions.all[1].op`).
// `toTree(fromTree(t))` equals `t` for every tree `fromTree` accepts; trees it cannot
// represent (wrong shapes) are edited as JSON instead.
import { EVENT_FIELDS, FACT_FIELDS, FOR_EACH, type ForEach } from "./catalog";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "matches", "exists"] as const;
export type Op = (typeof OPS)[number];

/** Operators whose right-hand side may name another field. */
export const REFERENCE_OPS: readonly Op[] = ["eq", "ne", "gt", "gte", "lt", "lte", "contains"];

/** A comparison's right-hand side. */
export type ValueModel =
  | { kind: "none" } // omitted (`exists` alone)
  | { kind: "literal"; value: Json }
  | { kind: "field"; field: string; times?: number; plus?: number };

export type CondNode =
  | { kind: "true"; id: string }
  | { kind: "group"; id: string; mode: "all" | "any"; children: CondNode[] }
  | { kind: "not"; id: string; child: CondNode }
  | { kind: "row"; id: string; field: string; op: Op; value: ValueModel };

export interface BuilderModel {
  /** Cron rules' `for_each`. */
  forEach: ForEach | null;
  root: CondNode;
}

/** A problem, named by its path like the server does. */
export interface FieldProblem {
  path: string;
  message: string;
}

export const MAX_DEPTH = 12;
export const MAX_NODES = 200;

let seq = 0;
/** Ids only key React rows; they never reach the JSON. */
export function nodeId(): string {
  seq += 1;
  return `c${seq}`;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

// ---------------------------------------------------------------- tree → model

/** Parses a tree into the builder's model, or says why it has to stay JSON. */
export function fromTree(tree: unknown): { ok: true; model: BuilderModel } | { ok: false; problem: FieldProblem } {
  if (!isObject(tree)) return { ok: false, problem: { path: "conditions", message: "must be an object" } };
  let forEach: ForEach | null = null;
  const rest: JsonObject = { ...tree };
  if ("for_each" in tree) {
    const f = tree.for_each;
    if (typeof f !== "string" || !(FOR_EACH as readonly string[]).includes(f)) {
      return { ok: false, problem: { path: "conditions.for_each", message: "must be task, agent or board" } };
    }
    forEach = f as ForEach;
    delete rest.for_each;
  }
  try {
    return { ok: true, model: { forEach, root: nodeFrom(rest, "conditions") } };
  } catch (e) {
    if (e instanceof ShapeError) return { ok: false, problem: e.problem };
    throw e;
  }
}

class ShapeError extends Error {
  constructor(readonly problem: FieldProblem) {
    super(`${problem.path}: ${problem.message}`);
  }
}

function nodeFrom(v: Json, at: string): CondNode {
  if (!isObject(v)) throw new ShapeError({ path: at, message: "must be an object" });
  const keys = Object.keys(v);
  if (keys.length === 0) return { kind: "true", id: nodeId() };
  if (keys.some((k) => k === "all" || k === "any" || k === "not")) {
    if (keys.length !== 1) {
      throw new ShapeError({ path: at, message: `a group has exactly one of all, any or not; found ${keys.sort().join(", ")}` });
    }
    const key = keys[0];
    if (key === "not") return { kind: "not", id: nodeId(), child: nodeFrom(v.not, `${at}.not`) };
    const items = v[key];
    if (!Array.isArray(items)) throw new ShapeError({ path: at, message: `${key} must be an array of conditions` });
    return {
      kind: "group",
      id: nodeId(),
      mode: key as "all" | "any",
      children: items.map((item, i) => nodeFrom(item, `${at}.${key}[${i}]`)),
    };
  }
  const extra = keys.sort().find((k) => k !== "field" && k !== "op" && k !== "value");
  if (extra) throw new ShapeError({ path: `${at}.${extra}`, message: "unknown key" });
  if (typeof v.field !== "string") throw new ShapeError({ path: `${at}.field`, message: "required" });
  if (typeof v.op !== "string" || !(OPS as readonly string[]).includes(v.op)) {
    throw new ShapeError({ path: `${at}.op`, message: `expected one of ${OPS.join(", ")}` });
  }
  const op = v.op as Op;
  let value: ValueModel;
  if (!("value" in v)) value = { kind: "none" };
  else if (isObject(v.value)) value = referenceFrom(v.value, `${at}.value`);
  else value = { kind: "literal", value: v.value };
  return { kind: "row", id: nodeId(), field: v.field, op, value };
}

function referenceFrom(v: JsonObject, at: string): ValueModel {
  const extra = Object.keys(v)
    .sort()
    .find((k) => k !== "field" && k !== "times" && k !== "plus");
  if (extra) throw new ShapeError({ path: `${at}.${extra}`, message: "unknown key" });
  if (typeof v.field !== "string") throw new ShapeError({ path: `${at}.field`, message: "required" });
  const out: ValueModel = { kind: "field", field: v.field };
  for (const key of ["times", "plus"] as const) {
    if (key in v) {
      const n = v[key];
      if (!isNumber(n)) throw new ShapeError({ path: `${at}.${key}`, message: "must be a number" });
      out[key] = n;
    }
  }
  return out;
}

// ---------------------------------------------------------------- model → tree

export function nodeToTree(n: CondNode): JsonObject {
  switch (n.kind) {
    case "true":
      return {};
    case "group":
      return { [n.mode]: n.children.map(nodeToTree) };
    case "not":
      return { not: nodeToTree(n.child) };
    case "row": {
      const out: JsonObject = { field: n.field, op: n.op };
      if (n.value.kind === "literal") out.value = n.value.value;
      if (n.value.kind === "field") {
        const ref: JsonObject = { field: n.value.field };
        if (n.value.times !== undefined) ref.times = n.value.times;
        if (n.value.plus !== undefined) ref.plus = n.value.plus;
        out.value = ref;
      }
      return out;
    }
  }
}

/** The JSON tree the API takes. */
export function toTree(model: BuilderModel): JsonObject {
  const root = nodeToTree(model.root);
  return model.forEach ? { for_each: model.forEach, ...root } : root;
}

// ---------------------------------------------------------------- validation (mirrors the server)

/** conditions.rs `check_field`: null when `path` names a known field. */
export function checkField(path: string): string | null {
  if (path.startsWith("event.")) {
    const rest = path.slice("event.".length);
    if (rest.startsWith("payload.")) {
      const payload = rest.slice("payload.".length);
      const ok = payload !== "" && payload.split(".").every((p) => p !== "" && /^[A-Za-z0-9_-]+$/.test(p));
      return ok ? null : `"${path}" is not a payload path like event.payload.to`;
    }
    if (rest === "payload" || (EVENT_FIELDS as readonly string[]).includes(rest)) return null;
    return `unknown field "${path}"; event fields are ${EVENT_FIELDS.map((f) => `event.${f}`).join(", ")} and event.payload.*`;
  }
  const dot = path.indexOf(".");
  const scope = dot < 0 ? path : path.slice(0, dot);
  const name = dot < 0 ? "" : path.slice(dot + 1);
  const names = (FACT_FIELDS as Record<string, readonly string[]>)[scope];
  if (names) {
    if (names.includes(name)) return null;
    return `unknown field "${path}"; ${scope} fields are ${names.map((n) => `${scope}.${n}`).join(", ")}`;
  }
  return `unknown field "${path}"; fields start with event., task., board. or agent.`;
}

/**
 * Whether a Rust `regex` pattern compiles, approximated with JavaScript's RegExp: inline
 * flags such as `(?i)` and `(?P<name>` are translated first. Returns a message or null.
 */
export function checkRegex(pattern: string): string | null {
  const translated = pattern
    .replace(/^\(\?([imsxU]+)\)/, "")
    .replace(/\(\?[imsxU-]+:/g, "(?:")
    .replace(/\(\?P</g, "(?<");
  for (const flags of ["", "u"]) {
    try {
      new RegExp(translated, flags);
      return null;
    } catch {
      /* try the next flavour */
    }
  }
  return "not a valid regular expression";
}

const OPS_TEXT = OPS.join(", ");

class Checker {
  nodes = 0;

  node(v: Json, at: string, depth: number): void {
    const fail = (message: string): never => {
      throw new ShapeError({ path: at, message });
    };
    this.nodes += 1;
    if (this.nodes > MAX_NODES) fail(`more than ${MAX_NODES} conditions`);
    if (depth > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH} levels`);
    if (!isObject(v)) return fail("must be an object");
    const keys = Object.keys(v)
      .sort()
      .filter((k) => !(depth === 0 && k === "for_each"));
    if (keys.length === 0) return;
    if (keys.some((k) => k === "all" || k === "any" || k === "not")) {
      if (keys.length !== 1) fail(`a group has exactly one of all, any or not; found ${keys.join(", ")}`);
      const key = keys[0];
      if (key === "not") return this.node(v.not, `${at}.not`, depth + 1);
      const items = v[key];
      if (!Array.isArray(items)) return fail(`${key} must be an array of conditions`);
      if (items.length === 0) fail(`${key} must not be empty`);
      items.forEach((item, i) => this.node(item, `${at}.${key}[${i}]`, depth + 1));
      return;
    }
    this.compare(v, at, depth === 0);
  }

  /** `top`: the comparison is the whole tree, where `for_each` may sit beside it. */
  compare(map: JsonObject, at: string, top = false): void {
    const fail = (path: string, message: string): never => {
      throw new ShapeError({ path, message });
    };
    const extra = Object.keys(map)
      .sort()
      .find((k) => k !== "field" && k !== "op" && k !== "value" && !(top && k === "for_each"));
    if (extra) {
      fail(`${at}.${extra}`, "unknown key; a comparison has field, op and value (a group has all, any or not)");
    }
    const field = map.field;
    if (typeof field !== "string") return fail(`${at}.field`, "required: the field to compare, like task.status");
    const bad = checkField(field);
    if (bad) fail(`${at}.field`, bad);
    const op = map.op;
    if (typeof op !== "string") return fail(`${at}.op`, `required: one of ${OPS_TEXT}`);
    if (!(OPS as readonly string[]).includes(op)) fail(`${at}.op`, `unknown operator "${op}"; expected one of ${OPS_TEXT}`);
    const valueAt = `${at}.value`;
    const has = "value" in map;
    const raw = map.value;
    if (op === "exists") {
      if (has && typeof raw !== "boolean") fail(valueAt, "exists takes true, false or nothing");
      return;
    }
    if (!has) return fail(valueAt, "required for this operator");
    if (op === "matches") {
      if (typeof raw !== "string") return fail(valueAt, "matches takes a regular expression string");
      const problem = checkRegex(raw);
      if (problem) fail(valueAt, problem);
      return;
    }
    if (op === "in" || op === "not_in") {
      if (!Array.isArray(raw)) fail(valueAt, "in and not_in take an array");
      return;
    }
    if (isObject(raw)) return this.reference(raw, valueAt);
    if (["gt", "gte", "lt", "lte"].includes(op) && !(typeof raw === "number" || typeof raw === "string")) {
      fail(valueAt, "ordering compares numbers (or strings such as timestamps)");
    }
  }

  reference(map: JsonObject, at: string): void {
    const extra = Object.keys(map)
      .sort()
      .find((k) => k !== "field" && k !== "times" && k !== "plus");
    if (extra) {
      throw new ShapeError({
        path: `${at}.${extra}`,
        message: "unknown key; a field reference has field, and optionally times and plus",
      });
    }
    if (typeof map.field !== "string") {
      throw new ShapeError({ path: `${at}.field`, message: "required: the field whose value to compare with" });
    }
    const bad = checkField(map.field);
    if (bad) throw new ShapeError({ path: `${at}.field`, message: bad });
    for (const key of ["times", "plus"]) {
      if (key in map && !isNumber(map[key])) throw new ShapeError({ path: `${at}.${key}`, message: "must be a number" });
    }
  }
}

/**
 * Checks a tree as `Conditions::parse(tree, cron)` does; the first problem, or null.
 * `cron` says whether the rule's trigger is a cron tick (which must say `for_each`).
 */
export function validateTree(tree: unknown, cron: boolean): FieldProblem | null {
  const forEach = isObject(tree) ? tree.for_each : undefined;
  if (forEach !== undefined && (typeof forEach !== "string" || !(FOR_EACH as readonly string[]).includes(forEach))) {
    return { path: "conditions.for_each", message: "must be task, agent or board" };
  }
  if (cron && forEach === undefined) {
    return { path: "conditions.for_each", message: "required for cron triggers: task, agent or board" };
  }
  if (!cron && forEach !== undefined) {
    return {
      path: "conditions.for_each",
      message: "only cron-triggered rules iterate; an event rule looks at the event's subject",
    };
  }
  try {
    new Checker().node(tree as Json, "conditions", 0);
    return null;
  } catch (e) {
    if (e instanceof ShapeError) return e.problem;
    throw e;
  }
}

// ---------------------------------------------------------------- literal values as text

/** How a literal shows in the value box for `op`; `textToLiteral` reads it back unchanged. */
export function literalToText(v: Json, op: Op = "eq"): string {
  if (typeof v === "string") {
    return op === "matches" || !looksTyped(v) ? v : JSON.stringify(v);
  }
  const list = op === "in" || op === "not_in";
  if (list && Array.isArray(v) && v.every((i) => i === null || typeof i !== "object")) {
    const parts = v.map((i) => literalToText(i));
    if (parts.every((p) => !p.includes(",") && p.trim() === p && p !== "")) return parts.join(", ");
  }
  return JSON.stringify(v);
}

/** Whether a plain string would read back as something else (a number, true, JSON...). */
function looksTyped(s: string): boolean {
  if (s === "") return false;
  return s !== s.trim() || scalarFromText(s, false) !== s || /^[[{"]/.test(s);
}

function scalarFromText(text: string, json = true): Json {
  const t = text.trim();
  if (t === "true") return true;
  if (t === "false") return false;
  if (t === "null") return null;
  if (/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(t)) return Number(t);
  if (json && /^[[{"]/.test(t)) {
    try {
      return JSON.parse(t) as Json;
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * Reads the value box for an operator: `in`/`not_in` take a comma-separated list (or a
 * JSON array), `matches` a pattern as is, the rest a number, true/false, null, a quoted
 * or plain string, or JSON.
 */
export function textToLiteral(text: string, op: Op): Json {
  if (op === "matches") return text;
  if (op === "in" || op === "not_in") {
    const t = text.trim();
    if (t.startsWith("[")) {
      try {
        const parsed = JSON.parse(t) as Json;
        if (Array.isArray(parsed)) return parsed;
      } catch {
        /* fall through to the list form */
      }
    }
    if (t === "") return [];
    return t.split(",").map((p) => scalarFromText(p.trim()));
  }
  return scalarFromText(text);
}

// ---------------------------------------------------------------- editing helpers (pure)

export function newRow(field = "task.status"): CondNode {
  return { kind: "row", id: nodeId(), field, op: "eq", value: { kind: "literal", value: "" } };
}

export function newGroup(mode: "all" | "any", field?: string): CondNode {
  return { kind: "group", id: nodeId(), mode, children: [newRow(field)] };
}

/** Replaces the node `id` by `fn(node)` anywhere in the tree. */
export function updateNode(n: CondNode, id: string, fn: (n: CondNode) => CondNode): CondNode {
  if (n.id === id) return fn(n);
  if (n.kind === "group") return { ...n, children: n.children.map((c) => updateNode(c, id, fn)) };
  if (n.kind === "not") return { ...n, child: updateNode(n.child, id, fn) };
  return n;
}

/**
 * Removes node `id`. Groups left empty and `not`s left without a child go too (an empty
 * group is invalid); an emptied root becomes "always".
 */
export function removeNode(root: CondNode, id: string): CondNode {
  const walk = (n: CondNode): CondNode | null => {
    if (n.id === id) return null;
    if (n.kind === "group") {
      const children = n.children.map(walk).filter((c): c is CondNode => c !== null);
      return children.length ? { ...n, children } : null;
    }
    if (n.kind === "not") {
      const child = walk(n.child);
      return child ? { ...n, child } : null;
    }
    return n;
  };
  return walk(root) ?? { kind: "true", id: nodeId() };
}

/** Adds `child` to group `groupId`, or at the top level when `groupId` is null. */
export function addChild(root: CondNode, groupId: string | null, child: CondNode): CondNode {
  if (groupId === null) {
    if (root.kind === "group") return { ...root, children: [...root.children, child] };
    if (root.kind === "true") return { kind: "group", id: nodeId(), mode: "all", children: [child] };
    return { kind: "group", id: nodeId(), mode: "all", children: [root, child] };
  }
  return updateNode(root, groupId, (g) => (g.kind === "group" ? { ...g, children: [...g.children, child] } : g));
}

/** Wraps node `id` in `not`, or unwraps it when it already is one. */
export function toggleNot(root: CondNode, id: string): CondNode {
  return updateNode(root, id, (n) => (n.kind === "not" ? n.child : { kind: "not", id: nodeId(), child: n }));
}

/** A default value for a row after its operator changes. */
export function valueForOp(op: Op, prev: ValueModel): ValueModel {
  if (op === "exists") return { kind: "none" };
  if (prev.kind === "field" && REFERENCE_OPS.includes(op)) return prev;
  const old = prev.kind === "literal" ? prev.value : "";
  if (op === "in" || op === "not_in") {
    if (Array.isArray(old)) return prev;
    return { kind: "literal", value: old === "" || old === null ? [] : [old] };
  }
  if (op === "matches") return { kind: "literal", value: typeof old === "string" ? old : "" };
  if (Array.isArray(old)) return { kind: "literal", value: old.length ? old[0] : "" };
  return { kind: "literal", value: old };
}

/** Counts the depth of the model (the root is 0), for deciding whether to offer nesting. */
export function depthOf(root: CondNode, id: string, depth = 0): number | null {
  if (root.id === id) return depth;
  if (root.kind === "group") {
    for (const c of root.children) {
      const d = depthOf(c, id, depth + 1);
      if (d !== null) return d;
    }
  }
  if (root.kind === "not") return depthOf(root.child, id, depth + 1);
  return null;
}
