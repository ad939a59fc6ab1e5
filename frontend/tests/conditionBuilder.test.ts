import { describe, expect, it } from "vitest";
import {
  addChild,
  checkRegex,
  fromTree,
  literalToText,
  newGroup,
  newRow,
  removeNode,
  textToLiteral,
  toggleNot,
  toTree,
  updateNode,
  validateTree,
  valueForOp,
  type BuilderModel,
  type CondNode,
  type Json,
  type Op,
} from "../src/console/rules/conditionBuilder";
import { fieldsFor } from "../src/console/rules/catalog";

// The six builtin rules (migrations/0010_proactivity.sql) with their triggers' cron-ness.
const BUILTINS: [string, boolean, Json][] = [
  ["overdue", true, { for_each: "task", all: [{ field: "task.overdue", op: "eq", value: true }] }],
  [
    "stale review",
    true,
    {
      for_each: "task",
      all: [
        { field: "task.status", op: "eq", value: "review" },
        { field: "task.age_in_status_seconds", op: "gt", value: 86400 },
      ],
    },
  ],
  [
    "wip",
    false,
    { all: [{ field: "board.in_progress_count", op: "gt", value: { field: "board.max_agents", times: 3 } }] },
  ],
  [
    "unblocking",
    false,
    {
      all: [
        { field: "event.payload.to", op: "eq", value: "done" },
        { field: "task.unblocked_downstream_count", op: "gt", value: 0 },
      ],
    },
  ],
  [
    "idle agent",
    false,
    {
      all: [
        { field: "agent.in_progress_count", op: "eq", value: 0 },
        { field: "agent.idle_seconds", op: "gt", value: 3600 },
        { field: "agent.next_task_id", op: "exists" },
      ],
    },
  ],
  [
    "follow-up",
    false,
    {
      all: [
        { field: "event.payload.to", op: "eq", value: "done" },
        {
          any: [
            { field: "task.title", op: "matches", value: "(?i)follow[ -]?up|next step|todo" },
            { field: "task.description", op: "matches", value: "(?i)follow[ -]?up|next step|todo" },
          ],
        },
      ],
    },
  ],
];

// docs/proactivity.md's example and the trees of conditions.rs's tests.
const VALID: Json[] = [
  {
    all: [
      { field: "event.payload.to", op: "eq", value: "done" },
      {
        any: [
          { field: "task.priority", op: "in", value: ["critical", "high"] },
          { not: { field: "task.assignee_agent_id", op: "exists" } },
        ],
      },
      { field: "board.in_progress_count", op: "gt", value: { field: "board.max_agents", times: 3 } },
    ],
  },
  {
    all: [
      { field: "event.payload.to", op: "eq", value: "done" },
      {
        any: [
          { field: "task.title", op: "matches", value: "(?i)follow[ -]?up" },
          { field: "task.status", op: "eq", value: "review" },
        ],
      },
      { not: { field: "task.priority", op: "exists" } },
      { field: "board.in_progress_count", op: "gt", value: { field: "board.max_agents", times: 3 } },
      { field: "task.age_in_status_seconds", op: "gte", value: 86400 },
      { field: "task.unblocked_task_ids", op: "contains", value: "b" },
      { field: "task.status", op: "in", value: ["done", "review"] },
    ],
  },
  { field: "board.in_progress_count", op: "gt", value: { field: "board.max_agents", times: 3, plus: 1 } },
  {},
  { field: "agent.idle_seconds", op: "gt", value: 1 },
  { field: "task.due_at", op: "exists", value: false },
  { field: "board.max_agents", op: "eq", value: 5.0 },
  {
    any: [
      { field: "event.type", op: "eq", value: "task.created" },
      { field: "board.max_agents", op: "gt", value: 1 },
    ],
  },
  { not: { field: "event.type", op: "exists" } },
  { field: "event.payload.task.priority", op: "ne", value: null },
  { field: "task.title", op: "eq", value: { field: "event.payload.title" } },
  { all: [{}, { not: {} }] },
];

// conditions.rs `every_problem_names_its_path`.
const PROBLEMS: [Json, string][] = [
  [[], "conditions"],
  [{ all: [] }, "conditions"],
  [{ all: {} }, "conditions"],
  [{ all: [{ field: "task.status", op: "eqq", value: 1 }] }, "conditions.all[0].op"],
  [{ any: [{ field: "task.colour", op: "eq", value: 1 }] }, "conditions.any[0].field"],
  [{ field: "planet.size", op: "eq", value: 1 }, "conditions.field"],
  [{ field: "task.status", op: "eq" }, "conditions.value"],
  [{ field: "task.status", op: "in", value: "done" }, "conditions.value"],
  [{ field: "task.title", op: "matches", value: "(" }, "conditions.value"],
  [{ field: "task.age_seconds", op: "gt", value: true }, "conditions.value"],
  [{ field: "task.status", op: "eq", value: 1, extra: 2 }, "conditions.extra"],
  [{ all: [{}], any: [{}] }, "conditions"],
  [
    { not: { field: "board.max_agents", op: "gt", value: { field: "board.nope" } } },
    "conditions.not.value.field",
  ],
  [{ field: "event.payload.", op: "exists" }, "conditions.field"],
  [{ all: [{ any: [{ field: "task.status", op: "exists", value: "yes" }] }] }, "conditions.all[0].any[0].value"],
  [{ field: "task.status", op: "eq", value: { field: "task.title", times: "2" } }, "conditions.value.times"],
  [{ field: "task.status", op: "eq", value: { field: "task.title", by: 2 } }, "conditions.value.by"],
];

describe("validateTree mirrors the server", () => {
  it.each(BUILTINS)("accepts the builtin %s rule", (_name, cron, tree) => {
    expect(validateTree(tree, cron)).toBeNull();
  });

  it.each(VALID.map((t, i) => [i, t] as const))("accepts valid tree #%i", (_i, tree) => {
    expect(validateTree(tree, false)).toBeNull();
  });

  it.each(PROBLEMS)("names the path of the problem in %j", (tree, path) => {
    expect(validateTree(tree, false)?.path).toBe(path);
  });

  it("limits depth and size", () => {
    let deep: Json = { field: "task.status", op: "exists" };
    for (let i = 0; i < 20; i++) deep = { not: deep };
    expect(validateTree(deep, false)?.message).toMatch(/deeper than 12/);
    const wide = { any: Array.from({ length: 200 }, () => ({ field: "task.status", op: "exists" })) };
    expect(validateTree(wide, false)?.path).toBe("conditions.any[199]");
    const ok = { any: Array.from({ length: 199 }, () => ({ field: "task.status", op: "exists" })) };
    expect(validateTree(ok, false)).toBeNull();
  });

  it("requires for_each exactly for cron rules", () => {
    expect(validateTree({}, true)?.path).toBe("conditions.for_each");
    expect(validateTree({ for_each: "task" }, false)?.path).toBe("conditions.for_each");
    expect(validateTree({ for_each: "planet" }, true)?.path).toBe("conditions.for_each");
    expect(validateTree({ for_each: "task" }, true)).toBeNull();
    // for_each may sit beside a single top-level comparison, as on the server...
    expect(validateTree({ for_each: "task", field: "task.overdue", op: "eq", value: true }, true)).toBeNull();
    // ...but not deeper down.
    expect(
      validateTree({ for_each: "task", all: [{ for_each: "task", field: "task.overdue", op: "eq", value: true }] }, true)
        ?.path,
    ).toBe("conditions.all[0].for_each");
  });

  it("accepts Rust regex syntax JavaScript lacks", () => {
    expect(checkRegex("(?i)follow[ -]?up")).toBeNull();
    expect(checkRegex("(?P<n>a+)b")).toBeNull();
    expect(checkRegex("(?i:ab)c")).toBeNull();
    expect(checkRegex("(")).not.toBeNull();
  });
});

describe("fromTree / toTree", () => {
  const all = [...BUILTINS.map(([, , t]) => t), ...VALID];
  it.each(all.map((t, i) => [i, t] as const))("round-trips tree #%i exactly", (_i, tree) => {
    const parsed = fromTree(tree);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(toTree(parsed.model)).toEqual(tree);
  });

  it("reads for_each into the model", () => {
    const parsed = fromTree(BUILTINS[0][2]);
    expect(parsed.ok && parsed.model.forEach).toBe("task");
    expect(parsed.ok && parsed.model.root.kind).toBe("group");
  });

  it("round-trips invalid-but-representable trees too (the validator reports them)", () => {
    const trees: Json[] = [
      { field: "task.colour", op: "eq", value: 1 },
      { field: "task.status", op: "eq" },
      { all: [{ field: "task.status", op: "in", value: "done" }] },
    ];
    for (const t of trees) {
      const parsed = fromTree(t);
      expect(parsed.ok).toBe(true);
      if (parsed.ok) expect(toTree(parsed.model)).toEqual(t);
    }
  });

  it("falls back to JSON for shapes it cannot show", () => {
    const bad: Json[] = [
      [],
      "x",
      { all: {} },
      { all: [{}], any: [{}] },
      { field: "task.status", op: "eqq", value: 1 },
      { field: "task.status", op: "eq", value: 1, extra: 2 },
      { field: "task.status", op: "eq", value: { field: "task.title", by: 2 } },
      { for_each: "org" },
      { all: [{ for_each: "task" }] },
    ];
    for (const t of bad) expect(fromTree(t).ok).toBe(false);
  });
});

/** Sets a row's field, operator and value text the way the editor does. */
function edit(root: CondNode, id: string, field: string, op: Op, text?: string): CondNode {
  return updateNode(root, id, (n) => {
    if (n.kind !== "row") return n;
    const value = valueForOp(op, n.value);
    return {
      ...n,
      field,
      op,
      value: text === undefined ? value : { kind: "literal", value: textToLiteral(text, op) },
    };
  });
}

describe("the builder produces valid trees", () => {
  it("builds the Unblocking Opportunity condition from rows", () => {
    let root: CondNode = { kind: "true", id: "r" };
    const a = newRow();
    const b = newRow();
    root = addChild(root, null, a);
    root = addChild(root, null, b);
    root = edit(root, a.id, "event.payload.to", "eq", "done");
    root = edit(root, b.id, "task.unblocked_downstream_count", "gt", "0");
    const model: BuilderModel = { forEach: null, root };
    expect(toTree(model)).toEqual(BUILTINS[3][2]);
    expect(validateTree(toTree(model), false)).toBeNull();
  });

  it("builds the WIP rule with a scaled field reference", () => {
    const row = newRow();
    let root = addChild({ kind: "true", id: "r" }, null, row);
    root = updateNode(root, row.id, (n) =>
      n.kind === "row"
        ? { ...n, field: "board.in_progress_count", op: "gt", value: { kind: "field", field: "board.max_agents", times: 3 } }
        : n,
    );
    expect(toTree({ forEach: null, root })).toEqual(BUILTINS[2][2]);
  });

  it("builds a cron rule with for_each, nested any and not groups", () => {
    const first = newRow();
    let root = addChild({ kind: "true", id: "r" }, null, first);
    root = edit(root, first.id, "task.status", "eq", "review");
    const any = newGroup("any");
    root = addChild(root, null, any);
    const anyRow = any.kind === "group" ? any.children[0] : any;
    root = edit(root, anyRow.id, "task.priority", "in", "critical, high");
    const second = newRow();
    root = addChild(root, any.id, second);
    root = edit(root, second.id, "task.assignee_agent_id", "exists");
    root = toggleNot(root, second.id);
    const tree = toTree({ forEach: "task", root });
    expect(tree).toEqual({
      for_each: "task",
      all: [
        { field: "task.status", op: "eq", value: "review" },
        {
          any: [
            { field: "task.priority", op: "in", value: ["critical", "high"] },
            { not: { field: "task.assignee_agent_id", op: "exists" } },
          ],
        },
      ],
    });
    expect(validateTree(tree, true)).toBeNull();
    const again = fromTree(tree);
    expect(again.ok && toTree(again.model)).toEqual(tree);
  });

  it("removing rows prunes empty groups and empties to always", () => {
    const a = newRow("task.status");
    const g = newGroup("any", "task.priority");
    let root = addChild(addChild({ kind: "true", id: "r" }, null, a), null, g);
    const inner = g.kind === "group" ? g.children[0] : g;
    root = removeNode(root, inner.id);
    expect(toTree({ forEach: null, root })).toEqual({ all: [{ field: "task.status", op: "eq", value: "" }] });
    root = removeNode(root, a.id);
    expect(toTree({ forEach: null, root })).toEqual({});
  });

  it("offers fields per trigger that the server accepts", () => {
    for (const trigger of ["task.status_changed", "agent.heartbeat", "cron.daily", "board.updated"]) {
      const fields = fieldsFor(trigger, trigger.startsWith("cron.") ? "task" : null);
      expect(fields.length).toBeGreaterThan(0);
      for (const f of fields) {
        expect(validateTree({ field: f, op: "exists" }, false)).toBeNull();
      }
    }
    expect(fieldsFor("task.status_changed", null)).toContain("event.payload.to");
    expect(fieldsFor("cron.daily", "task")).not.toContain("event.type");
  });
});

describe("literal values as text", () => {
  const cases: [Json, Op][] = [
    ["done", "eq"],
    ["", "eq"],
    ["42", "eq"],
    ["true", "eq"],
    [" padded", "eq"],
    ['"quoted"', "eq"],
    ["[x]", "eq"],
    [42, "eq"],
    [3.5, "gt"],
    [true, "eq"],
    [null, "ne"],
    [["critical", "high"], "in"],
    [["a,b", "c"], "in"],
    [[1, "1", true], "not_in"],
    [[], "in"],
    [[""], "in"],
    [["x"], "eq"],
    [{ a: 1 } as Json, "contains"],
    ["12", "matches"],
    ['"q"', "matches"],
  ];
  it.each(cases)("%j reads back unchanged for %s", (value, op) => {
    expect(textToLiteral(literalToText(value, op), op)).toEqual(value);
  });

  it("reads what people type", () => {
    expect(textToLiteral("critical, high", "in")).toEqual(["critical", "high"]);
    expect(textToLiteral("86400", "gt")).toBe(86400);
    expect(textToLiteral("(?i)follow", "matches")).toBe("(?i)follow");
    expect(textToLiteral("12", "matches")).toBe("12");
    expect(literalToText(["critical", "high"], "in")).toBe("critical, high");
    expect(literalToText(["x"], "eq")).toBe('["x"]');
  });
});
