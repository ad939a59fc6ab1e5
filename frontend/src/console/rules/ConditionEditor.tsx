// The visual condition builder: nested all/any groups, `not`, and rows of field +
// operator + value (a literal or another field, scaled by times/plus). Trees it cannot
// show, and anyone who prefers it, get a JSON textarea; both edit the same tree.
import { useId, useState } from "react";
import { useI18n } from "../../shared/i18n";
import { FOR_EACH, fieldsFor, isCron, type ForEach } from "./catalog";
import {
  MAX_DEPTH,
  OPS,
  REFERENCE_OPS,
  addChild,
  fromTree,
  literalToText,
  newGroup,
  newRow,
  nodeId,
  removeNode,
  textToLiteral,
  toTree,
  toggleNot,
  updateNode,
  valueForOp,
  type BuilderModel,
  type CondNode,
  type Json,
  type Op,
} from "./conditionBuilder";

/** What the form holds: the visual model, or JSON text when the tree is edited as text. */
export type ConditionState =
  | { mode: "visual"; model: BuilderModel }
  | { mode: "json"; text: string; note?: string };

export function conditionStateFrom(tree: unknown): ConditionState {
  const parsed = fromTree(tree ?? {});
  if (parsed.ok) return { mode: "visual", model: parsed.model };
  return { mode: "json", text: JSON.stringify(tree, null, 2), note: `${parsed.problem.path}: ${parsed.problem.message}` };
}

/** The tree to send, or the reason the JSON text is not JSON. */
export function conditionTreeOf(state: ConditionState): { tree: Json } | { error: string } {
  if (state.mode === "visual") return { tree: toTree(state.model) };
  try {
    return { tree: JSON.parse(state.text) as Json };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** Keeps for_each in step with the trigger: cron rules need it, event rules must not have it. */
export function alignForEach(state: ConditionState, trigger: string): ConditionState {
  if (state.mode !== "visual") return state;
  const cron = isCron(trigger);
  const { model } = state;
  if (cron && !model.forEach) {
    // A comparison cannot sit next to for_each at the top: wrap the root in a group.
    const root: CondNode =
      model.root.kind === "row" || model.root.kind === "not"
        ? { kind: "group", id: nodeId(), mode: "all", children: [model.root] }
        : model.root;
    return { mode: "visual", model: { forEach: "task", root } };
  }
  if (!cron && model.forEach) return { mode: "visual", model: { ...model, forEach: null } };
  return state;
}

interface Props {
  state: ConditionState;
  onChange: (s: ConditionState) => void;
  trigger: string;
  disabled?: boolean;
}

export function ConditionEditor({ state, onChange, trigger, disabled }: Props) {
  const { t } = useI18n();
  const listId = useId();
  const [switchError, setSwitchError] = useState<string | null>(null);
  const forEach = state.mode === "visual" ? state.model.forEach : null;
  const fields = fieldsFor(trigger, forEach);

  const toJson = () => {
    if (state.mode !== "visual") return;
    setSwitchError(null);
    onChange({ mode: "json", text: JSON.stringify(toTree(state.model), null, 2) });
  };
  const toVisual = () => {
    if (state.mode !== "json") return;
    let tree: unknown;
    try {
      tree = JSON.parse(state.text);
    } catch (e) {
      setSwitchError(e instanceof Error ? e.message : String(e));
      return;
    }
    const parsed = fromTree(tree);
    if (!parsed.ok) {
      setSwitchError(`${parsed.problem.path}: ${parsed.problem.message}`);
      return;
    }
    setSwitchError(null);
    onChange({ mode: "visual", model: parsed.model });
  };

  return (
    <fieldset disabled={disabled} data-testid="condition-editor">
      <legend>{t("rules.conditions")}</legend>
      <div className="row between">
        <span className="muted">{t("rules.conditionsHelp")}</span>
        <button
          type="button"
          onClick={state.mode === "visual" ? toJson : toVisual}
          data-testid="condition-json-toggle"
        >
          {state.mode === "visual" ? t("rules.editJson") : t("rules.editVisual")}
        </button>
      </div>
      {switchError && (
        <p className="error-panel" role="alert">
          {t("rules.cannotVisual", { problem: switchError })}
        </p>
      )}
      {state.mode === "json" ? (
        <label>
          {t("rules.conditionsJson")}
          {state.note && <span className="muted">{t("rules.jsonFallback", { problem: state.note })}</span>}
          <textarea
            className="json-editor"
            value={state.text}
            spellCheck={false}
            onChange={(e) => onChange({ ...state, text: e.target.value })}
            data-testid="condition-json"
          />
        </label>
      ) : (
        <>
          {isCron(trigger) && (
            <label>
              {t("rules.forEach")}
              <select
                value={state.model.forEach ?? ""}
                onChange={(e) =>
                  onChange({ mode: "visual", model: { ...state.model, forEach: (e.target.value || null) as ForEach | null } })
                }
                data-testid="condition-for-each"
              >
                {FOR_EACH.map((f) => (
                  <option key={f} value={f}>
                    {t(`rules.forEach.${f}`)}
                  </option>
                ))}
              </select>
            </label>
          )}
          <datalist id={listId}>
            {fields.map((f) => (
              <option key={f} value={f} />
            ))}
          </datalist>
          <NodeEditor
            node={state.model.root}
            depth={0}
            listId={listId}
            defaultField={fields[0] ?? "task.status"}
            update={(root) => onChange({ mode: "visual", model: { ...state.model, root } })}
            root={state.model.root}
          />
          {state.model.root.kind !== "group" && (
            <div className="row">
              <button
                type="button"
                onClick={() =>
                  onChange({
                    mode: "visual",
                    model: { ...state.model, root: addChild(state.model.root, null, newRow(fields[0])) },
                  })
                }
                data-testid="condition-add-row"
              >
                {t("rules.addRow")}
              </button>
            </div>
          )}
        </>
      )}
    </fieldset>
  );
}

interface NodeProps {
  node: CondNode;
  root: CondNode;
  depth: number;
  listId: string;
  defaultField: string;
  update: (root: CondNode) => void;
}

function NodeEditor(props: NodeProps) {
  const { t } = useI18n();
  const { node, root, depth, update } = props;
  if (node.kind === "true") {
    return <p className="muted">{t("rules.always")}</p>;
  }
  if (node.kind === "not") {
    return (
      <div className="cond-not">
        <div className="row">
          <strong>{t("rules.not")}</strong>
          <button type="button" onClick={() => update(toggleNot(root, node.id))} data-testid="condition-not-toggle">
            {t("rules.unwrapNot")}
          </button>
        </div>
        <NodeEditor {...props} node={node.child} depth={depth + 1} />
      </div>
    );
  }
  if (node.kind === "group") {
    const canNest = depth + 1 < MAX_DEPTH;
    return (
      <div className={`cond-group ${node.mode}`} role="group" aria-label={t(`rules.mode.${node.mode}`)}>
        <div className="row">
          <label className="inline">
            <span className="sr-only">{t("rules.groupMode")}</span>
            <select
              value={node.mode}
              onChange={(e) =>
                update(updateNode(root, node.id, (n) => (n.kind === "group" ? { ...n, mode: e.target.value as "all" | "any" } : n)))
              }
              data-testid="condition-group-mode"
            >
              <option value="all">{t("rules.mode.all")}</option>
              <option value="any">{t("rules.mode.any")}</option>
            </select>
          </label>
          {depth > 0 && (
            <>
              <button type="button" onClick={() => update(toggleNot(root, node.id))} data-testid="condition-not-toggle">
                {t("rules.negate")}
              </button>
              <button
                type="button"
                onClick={() => update(removeNode(root, node.id))}
                data-testid="condition-remove"
                aria-label={t("rules.removeGroup")}
              >
                ×
              </button>
            </>
          )}
        </div>
        {node.children.map((c) => (
          <NodeEditor key={c.id} {...props} node={c} depth={depth + 1} />
        ))}
        <div className="row">
          <button
            type="button"
            onClick={() => update(addChild(root, node.id, newRow(props.defaultField)))}
            data-testid="condition-add-row"
          >
            {t("rules.addRow")}
          </button>
          {canNest && (
            <>
              <button
                type="button"
                onClick={() => update(addChild(root, node.id, newGroup("any", props.defaultField)))}
                data-testid="condition-add-any"
              >
                {t("rules.addAny")}
              </button>
              <button
                type="button"
                onClick={() => update(addChild(root, node.id, newGroup("all", props.defaultField)))}
                data-testid="condition-add-all"
              >
                {t("rules.addAll")}
              </button>
            </>
          )}
        </div>
      </div>
    );
  }
  return <RowEditor {...props} node={node} />;
}

function RowEditor({ node, root, listId, update }: NodeProps & { node: Extract<CondNode, { kind: "row" }> }) {
  const { t } = useI18n();
  const set = (fn: (n: Extract<CondNode, { kind: "row" }>) => CondNode) =>
    update(updateNode(root, node.id, (n) => (n.kind === "row" ? fn(n) : n)));
  const canReference = REFERENCE_OPS.includes(node.op);
  return (
    <div className="cond-row" data-testid="condition-row">
      <label className="inline">
        <span className="sr-only">{t("rules.field")}</span>
        <input
          className="field-input"
          list={listId}
          value={node.field}
          placeholder="task.status"
          onChange={(e) => set((n) => ({ ...n, field: e.target.value.trim() }))}
          data-testid="condition-field"
          aria-label={t("rules.field")}
        />
      </label>
      <label className="inline">
        <span className="sr-only">{t("rules.op")}</span>
        <select
          value={node.op}
          onChange={(e) => {
            const op = e.target.value as Op;
            set((n) => ({ ...n, op, value: valueForOp(op, n.value) }));
          }}
          data-testid="condition-op"
          aria-label={t("rules.op")}
        >
          {OPS.map((op) => (
            <option key={op} value={op}>
              {t(`rules.op.${op}`)}
            </option>
          ))}
        </select>
      </label>
      {node.op === "exists" ? (
        <label className="inline">
          <span className="sr-only">{t("rules.value")}</span>
          <select
            value={node.value.kind === "literal" ? String(node.value.value) : "omit"}
            onChange={(e) =>
              set((n) => ({
                ...n,
                value: e.target.value === "omit" ? { kind: "none" } : { kind: "literal", value: e.target.value === "true" },
              }))
            }
            data-testid="condition-value"
            aria-label={t("rules.value")}
          >
            <option value="omit">{t("rules.exists.present")}</option>
            <option value="true">{t("rules.exists.true")}</option>
            <option value="false">{t("rules.exists.false")}</option>
          </select>
        </label>
      ) : (
        <>
          {canReference && (
            <label className="inline">
              <span className="sr-only">{t("rules.valueKind")}</span>
              <select
                value={node.value.kind === "field" ? "field" : "literal"}
                onChange={(e) =>
                  set((n) => ({
                    ...n,
                    value:
                      e.target.value === "field"
                        ? { kind: "field", field: "" }
                        : { kind: "literal", value: "" },
                  }))
                }
                data-testid="condition-value-kind"
                aria-label={t("rules.valueKind")}
              >
                <option value="literal">{t("rules.valueKind.literal")}</option>
                <option value="field">{t("rules.valueKind.field")}</option>
              </select>
            </label>
          )}
          {node.value.kind === "field" ? (
            <ReferenceEditor value={node.value} listId={listId} onChange={(value) => set((n) => ({ ...n, value }))} />
          ) : (
            <LiteralInput
              key={`${node.id}:${node.op}`}
              value={node.value.kind === "literal" ? node.value.value : ""}
              op={node.op}
              onChange={(value) => set((n) => ({ ...n, value: { kind: "literal", value } }))}
            />
          )}
        </>
      )}
      <button type="button" onClick={() => update(toggleNot(root, node.id))} data-testid="condition-not-toggle">
        {t("rules.negate")}
      </button>
      <button
        type="button"
        onClick={() => update(removeNode(root, node.id))}
        data-testid="condition-remove"
        aria-label={t("rules.removeRow")}
      >
        ×
      </button>
    </div>
  );
}

/** Keeps the typed text while it is being edited; the model gets the parsed value. */
function LiteralInput({ value, op, onChange }: { value: Json; op: Op; onChange: (v: Json) => void }) {
  const { t } = useI18n();
  const [text, setText] = useState(() => literalToText(value, op));
  const hint = op === "in" || op === "not_in" ? t("rules.valueListHint") : op === "matches" ? t("rules.valueRegexHint") : t("rules.valueHint");
  return (
    <label className="inline">
      <span className="sr-only">{t("rules.value")}</span>
      <input
        className="value-input"
        value={text}
        placeholder={hint}
        title={hint}
        onChange={(e) => {
          setText(e.target.value);
          onChange(textToLiteral(e.target.value, op));
        }}
        data-testid="condition-value"
        aria-label={t("rules.value")}
      />
    </label>
  );
}

function ReferenceEditor({
  value,
  listId,
  onChange,
}: {
  value: { kind: "field"; field: string; times?: number; plus?: number };
  listId: string;
  onChange: (v: { kind: "field"; field: string; times?: number; plus?: number }) => void;
}) {
  const { t } = useI18n();
  const num = (s: string): number | undefined => {
    if (s.trim() === "") return undefined;
    const n = Number(s);
    return Number.isFinite(n) ? n : undefined;
  };
  return (
    <>
      <input
        className="field-input"
        list={listId}
        value={value.field}
        placeholder="board.max_agents"
        onChange={(e) => onChange({ ...value, field: e.target.value.trim() })}
        data-testid="condition-ref-field"
        aria-label={t("rules.refField")}
      />
      <span className="muted">×</span>
      <input
        className="num-input"
        type="number"
        step="any"
        value={value.times ?? ""}
        placeholder="1"
        onChange={(e) => onChange({ ...value, times: num(e.target.value) })}
        data-testid="condition-ref-times"
        aria-label={t("rules.times")}
      />
      <span className="muted">+</span>
      <input
        className="num-input"
        type="number"
        step="any"
        value={value.plus ?? ""}
        placeholder="0"
        onChange={(e) => onChange({ ...value, plus: num(e.target.value) })}
        data-testid="condition-ref-plus"
        aria-label={t("rules.plus")}
      />
    </>
  );
}
