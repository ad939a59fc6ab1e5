// Create or edit a proactive rule. Conditions and the action config are checked here the
// way the server checks them; the server's own answer (with the path of the problem) is
// shown next to the Save button. Builtin rules only take enabled and cooldown.
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import type { Schema } from "../../shared/api/client";
import { ApiError } from "../../shared/api/errors";
import { useI18n } from "../../shared/i18n";
import { api, queryClient, unwrap } from "../api";
import { useCanWrite } from "../auth";
import { fetchBoardNames, keys, type Rule } from "../suggestions/data";
import { useToast } from "../ui/Toasts";
import { actionConfigOf, actionFormFrom, emptyActionForm, type ActionForm } from "./actionConfig";
import {
  ACCEPT_ACTIONS,
  ACTION_TYPES,
  CHANNELS,
  PRIORITIES,
  SUBJECTS,
  SUGGESTION_TYPES,
  TRIGGER_EVENTS,
  isCron,
  type AcceptAction,
  type ActionType,
} from "./catalog";
import { validateTree } from "./conditionBuilder";
import { ConditionEditor, alignForEach, conditionStateFrom, conditionTreeOf, type ConditionState } from "./ConditionEditor";

type CreateRule = Schema<"CreateRule">;
type UpdateRule = Schema<"UpdateRule">;

interface Problem {
  message: string;
  details: { field: string; message: string }[];
}

function problemOf(err: unknown): Problem {
  if (err instanceof ApiError) {
    const details = Array.isArray(err.details)
      ? (err.details as { field?: unknown; message?: unknown }[])
          .filter((d) => typeof d.field === "string")
          .map((d) => ({ field: String(d.field), message: String(d.message ?? "") }))
      : [];
    return { message: `${err.message} (${err.code})`, details };
  }
  return { message: err instanceof Error ? err.message : String(err), details: [] };
}

const DEFAULT_COOLDOWN = "3600";

export function RuleForm({ rule, onDone }: { rule: Rule | null; onDone: () => void }) {
  const { t } = useI18n();
  const toast = useToast();
  const builtin = rule?.is_builtin ?? false;
  // Viewers may open a rule to read it; everything stays disabled and there is no Save.
  const readOnly = !useCanWrite();
  const [name, setName] = useState(rule?.name ?? "");
  const [description, setDescription] = useState(rule?.description ?? "");
  const [trigger, setTrigger] = useState(rule?.trigger_event ?? "task.status_changed");
  const [boardId, setBoardId] = useState(rule?.board_id ?? "");
  const [cooldown, setCooldown] = useState(rule ? String(rule.cooldown_seconds) : DEFAULT_COOLDOWN);
  const [enabled, setEnabled] = useState(rule?.is_enabled ?? true);
  const [conditions, setConditions] = useState<ConditionState>(() => conditionStateFrom(rule?.conditions ?? {}));
  const [actionType, setActionType] = useState<ActionType>(rule?.action_type ?? "create_suggestion");
  const [action, setAction] = useState<ActionForm>(() =>
    rule ? actionFormFrom(rule.action_type, rule.action_config) : emptyActionForm(),
  );
  const [problem, setProblem] = useState<Problem | null>(null);
  const boards = useQuery({ queryKey: keys.boardNames, queryFn: fetchBoardNames, staleTime: 60_000 });
  const agents = useQuery({
    queryKey: ["insight", "agents"],
    queryFn: async () => unwrap(await api.GET("/api/v1/agents", { params: { query: { limit: 100 } } })).items,
    staleTime: 60_000,
  });

  const save = useMutation({
    mutationFn: async (): Promise<Rule> => {
      const cooldownSeconds = Number(cooldown);
      if (builtin && rule) {
        const body: UpdateRule = { cooldown_seconds: cooldownSeconds, is_enabled: enabled };
        return unwrap(await api.PATCH("/api/v1/proactive-rules/{id}", { params: { path: { id: rule.id } }, body }));
      }
      const tree = conditionTreeOf(conditions);
      if ("error" in tree) throw { local: { message: t("rules.notJson", { what: "conditions", error: tree.error }), details: [] } };
      const bad = validateTree(tree.tree, isCron(trigger));
      if (bad) throw { local: { message: t("rules.invalid"), details: [{ field: bad.path, message: bad.message }] } };
      let config: unknown;
      try {
        config = actionConfigOf(actionType, action);
      } catch (e) {
        throw { local: { message: t("rules.notJson", { what: "action_config", error: String(e) }), details: [] } };
      }
      const common = {
        name: name.trim(),
        trigger_event: trigger,
        conditions: tree.tree as Record<string, never>,
        action_type: actionType,
        action_config: config as Record<string, never>,
        cooldown_seconds: cooldownSeconds,
        is_enabled: enabled,
      };
      if (rule) {
        const body: UpdateRule = {
          ...common,
          description: description.trim() ? description.trim() : null,
          board_id: boardId || null,
        };
        return unwrap(await api.PATCH("/api/v1/proactive-rules/{id}", { params: { path: { id: rule.id } }, body }));
      }
      const body: CreateRule = {
        ...common,
        description: description.trim() || undefined,
        board_id: boardId || undefined,
      };
      return unwrap(await api.POST("/api/v1/proactive-rules", { body }));
    },
    onSuccess: () => {
      setProblem(null);
      toast.success(rule ? t("common.saved") : t("rules.created"));
      void queryClient.invalidateQueries({ queryKey: keys.rules });
      onDone();
    },
    onError: (err) => {
      const local = (err as { local?: Problem }).local;
      setProblem(local ?? problemOf(err));
    },
  });

  const changeTrigger = (next: string) => {
    setTrigger(next);
    setConditions((c) => alignForEach(c, next));
  };
  const setA = (patch: Partial<ActionForm>) => setAction((a) => ({ ...a, ...patch }));
  const locked = builtin || readOnly;

  return (
    <form
      className="rule-form"
      data-testid="rule-form"
      aria-label={rule ? t("rules.edit") : t("rules.create")}
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      {builtin && <p className="banner">{t("rules.builtinNote")}</p>}
      <fieldset disabled={locked}>
        <legend>{t("rules.basics")}</legend>
        <label>
          {t("common.name")}
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} data-testid="rule-name" />
        </label>
        <label>
          {t("rules.description")}
          <textarea value={description} onChange={(e) => setDescription(e.target.value)} data-testid="rule-description" />
        </label>
        <div className="form-grid">
          <label>
            {t("rules.trigger")}
            <select value={trigger} onChange={(e) => changeTrigger(e.target.value)} data-testid="rule-trigger">
              <optgroup label={t("rules.triggerEvents")}>
                {TRIGGER_EVENTS.filter((e) => !isCron(e)).map((e) => (
                  <option key={e} value={e}>
                    {e}
                  </option>
                ))}
              </optgroup>
              <optgroup label={t("rules.triggerCron")}>
                {TRIGGER_EVENTS.filter(isCron).map((e) => (
                  <option key={e} value={e}>
                    {t(`rules.cron.${e}`)}
                  </option>
                ))}
              </optgroup>
            </select>
          </label>
          <label>
            {t("rules.board")}
            <select value={boardId} onChange={(e) => setBoardId(e.target.value)} data-testid="rule-board">
              <option value="">{t("rules.allBoards")}</option>
              {[...(boards.data ?? new Map<string, string>())].map(([id, n]) => (
                <option key={id} value={id}>
                  {n}
                </option>
              ))}
              {boardId && !boards.data?.has(boardId) && <option value={boardId}>{boardId}</option>}
            </select>
          </label>
        </div>
      </fieldset>
      <fieldset disabled={readOnly}>
        <legend>{t("rules.runs")}</legend>
        <div className="form-grid">
          <label>
            {t("rules.cooldown")}
            <input
              type="number"
              min={0}
              max={2592000}
              value={cooldown}
              onChange={(e) => setCooldown(e.target.value)}
              required
              data-testid="rule-cooldown"
            />
          </label>
          <label className="inline">
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} data-testid="rule-enabled" />
            {t("rules.enabled")}
          </label>
        </div>
      </fieldset>
      <ConditionEditor state={conditions} onChange={setConditions} trigger={trigger} disabled={locked} />
      <fieldset disabled={locked}>
        <legend>{t("rules.action")}</legend>
        <div className="row between">
          <label>
            {t("rules.actionType")}
            <select
              value={actionType}
              onChange={(e) => setActionType(e.target.value as ActionType)}
              data-testid="rule-action-type"
            >
              {ACTION_TYPES.map((a) => (
                <option key={a} value={a}>
                  {t(`rules.action.${a}`)}
                </option>
              ))}
            </select>
          </label>
          <button
            type="button"
            onClick={() => {
              if (action.mode === "form") {
                setA({ mode: "json", json: JSON.stringify(actionConfigOf(actionType, action), null, 2) });
              } else {
                try {
                  setAction({ ...actionFormFrom(actionType, JSON.parse(action.json)) });
                } catch (e) {
                  setProblem({ message: t("rules.notJson", { what: "action_config", error: String(e) }), details: [] });
                }
              }
            }}
            data-testid="action-json-toggle"
          >
            {action.mode === "form" ? t("rules.editJson") : t("rules.editForm")}
          </button>
        </div>
        {action.mode === "json" ? (
          <label>
            {t("rules.actionJson")}
            <textarea
              className="json-editor"
              value={action.json}
              spellCheck={false}
              onChange={(e) => setA({ json: e.target.value })}
              data-testid="action-json"
            />
          </label>
        ) : (
          <ActionFields
            type={actionType}
            f={action}
            set={setA}
            boards={boards.data}
            agents={agents.data?.map((a) => [a.id, a.name] as const) ?? []}
          />
        )}
      </fieldset>
      <div aria-live="assertive">
        {problem && (
          <div className="error-panel rule-error" role="alert" data-testid="rule-error">
            <div>{problem.message}</div>
            {problem.details.length > 0 && (
              <ul>
                {problem.details.map((d) => (
                  <li key={d.field + d.message}>
                    <code data-testid="rule-error-path">{d.field}</code>: {d.message}
                  </li>
                ))}
              </ul>
            )}
          </div>
        )}
      </div>
      <div className="row end">
        <button type="button" onClick={onDone} data-testid="rule-cancel">
          {t("common.cancel")}
        </button>
        {!readOnly && (
          <button type="submit" className="primary" disabled={save.isPending} data-testid="rule-save">
            {t("common.save")}
          </button>
        )}
      </div>
    </form>
  );
}

function Select({
  label,
  value,
  onChange,
  options,
  testId,
  empty,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  options: readonly (readonly [string, string])[];
  testId: string;
  empty?: string;
}) {
  const known = options.some(([v]) => v === value) || (empty !== undefined && value === "");
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId}>
        {empty !== undefined && <option value="">{empty}</option>}
        {options.map(([v, l]) => (
          <option key={v} value={v}>
            {l}
          </option>
        ))}
        {!known && <option value={value}>{value}</option>}
      </select>
    </label>
  );
}

function Text({
  label,
  value,
  onChange,
  testId,
  area,
  hint,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  testId: string;
  area?: boolean;
  hint?: ReactNode;
}) {
  return (
    <label>
      {label}
      {area ? (
        <textarea value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} />
      ) : (
        <input value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId} />
      )}
      {hint && <span className="muted">{hint}</span>}
    </label>
  );
}

function ActionFields({
  type,
  f,
  set,
  boards,
  agents,
}: {
  type: ActionType;
  f: ActionForm;
  set: (p: Partial<ActionForm>) => void;
  boards: Map<string, string> | undefined;
  agents: (readonly [string, string])[];
}) {
  const { t } = useI18n();
  const subjects = SUBJECTS.map((s) => [s, t(`rules.subject.${s}`)] as const);
  const agentOptions = [
    ["{task.assignee_agent_id}", t("rules.tpl.taskAgent")] as const,
    ["{agent.id}", t("rules.tpl.eventAgent")] as const,
    ...agents,
  ];
  if (type === "auto_assign") {
    return (
      <Select
        label={t("rules.assignTo")}
        value={f.agent_id}
        onChange={(v) => set({ agent_id: v })}
        options={agents}
        empty={t("rules.leastLoaded")}
        testId="rule-agent"
      />
    );
  }
  if (type === "send_notification") {
    return (
      <>
        <Text label={t("rules.notifTitle")} value={f.title} onChange={(v) => set({ title: v })} testId="rule-title" hint={t("rules.templateHint")} />
        <Text label={t("rules.notifBody")} value={f.description} onChange={(v) => set({ description: v })} testId="rule-body" area />
        <div className="form-grid">
          <Select
            label={t("rules.channel")}
            value={f.channel}
            onChange={(v) => set({ channel: v })}
            options={CHANNELS.map((c) => [c, t(`rules.channel.${c}`)] as const)}
            empty={t("rules.default")}
            testId="rule-channel"
          />
          <Text label={t("rules.recipients")} value={f.recipients} onChange={(v) => set({ recipients: v })} testId="rule-recipients" hint={t("rules.recipientsHint")} />
          <Select label={t("rules.subject")} value={f.subject} onChange={(v) => set({ subject: v })} options={subjects} empty={t("rules.default")} testId="rule-subject" />
        </div>
      </>
    );
  }
  const boardOptions = [
    ["{task.board_id}", t("rules.tpl.taskBoard")] as const,
    ["{board.id}", t("rules.tpl.eventBoard")] as const,
    ...[...(boards ?? new Map<string, string>())].map(([id, n]) => [id, n] as const),
  ];
  return (
    <>
      <div className="form-grid">
        <Select
          label={t("rules.suggestionType")}
          value={f.suggestion_type}
          onChange={(v) => set({ suggestion_type: v })}
          options={SUGGESTION_TYPES.map((s) => [s, t(`suggestion.type.${s}`)] as const)}
          testId="rule-suggestion-type"
        />
        <Select
          label={t("rules.priority")}
          value={f.priority}
          onChange={(v) => set({ priority: v })}
          options={PRIORITIES.map((p) => [p, t(`insight.priority.${p}`)] as const)}
          empty={t("rules.default")}
          testId="rule-priority"
        />
        <Select label={t("rules.subject")} value={f.subject} onChange={(v) => set({ subject: v })} options={subjects} empty={t("rules.default")} testId="rule-subject" />
        <Text label={t("rules.confidence")} value={f.confidence} onChange={(v) => set({ confidence: v })} testId="rule-confidence" hint="0–1" />
        <Text label={t("rules.expires")} value={f.expires_in_hours} onChange={(v) => set({ expires_in_hours: v })} testId="rule-expires" />
      </div>
      <Text label={t("rules.suggestionTitle")} value={f.title} onChange={(v) => set({ title: v })} testId="rule-title" hint={t("rules.templateHint")} />
      <Text label={t("rules.suggestionDescription")} value={f.description} onChange={(v) => set({ description: v })} testId="rule-suggestion-description" area />
      <Select
        label={t("rules.onAccept")}
        value={f.accept}
        onChange={(v) => set({ accept: v as AcceptAction, acceptExplicit: true })}
        options={ACCEPT_ACTIONS.map((a) => [a, t(`rules.accept.${a}`)] as const)}
        testId="rule-on-accept"
      />
      {f.accept === "set_priority" && (
        <div className="form-grid">
          <Text label={t("rules.acceptTask")} value={f.acceptTaskId} onChange={(v) => set({ acceptTaskId: v })} testId="rule-accept-task" />
          <Select
            label={t("rules.priority")}
            value={f.acceptPriority}
            onChange={(v) => set({ acceptPriority: v })}
            options={PRIORITIES.map((p) => [p, t(`insight.priority.${p}`)] as const)}
            testId="rule-accept-priority"
          />
        </div>
      )}
      {f.accept === "assign_tasks" && (
        <div className="form-grid">
          <Text label={t("rules.acceptTasks")} value={f.acceptTaskIds} onChange={(v) => set({ acceptTaskIds: v })} testId="rule-accept-tasks" hint={t("rules.acceptTasksHint")} />
          <Select label={t("rules.acceptAgent")} value={f.acceptAgentId} onChange={(v) => set({ acceptAgentId: v })} options={agentOptions} empty="—" testId="rule-accept-agent" />
        </div>
      )}
      {f.accept === "create_task" && (
        <>
          <div className="form-grid">
            <Select label={t("rules.acceptBoard")} value={f.acceptBoardId} onChange={(v) => set({ acceptBoardId: v })} options={boardOptions} testId="rule-accept-board" />
            <Select
              label={t("rules.priority")}
              value={f.acceptPriority}
              onChange={(v) => set({ acceptPriority: v })}
              options={[...PRIORITIES.map((p) => [p, t(`insight.priority.${p}`)] as const), ["{task.priority}", t("rules.tpl.taskPriority")] as const]}
              empty={t("rules.default")}
              testId="rule-accept-priority"
            />
          </div>
          <Text label={t("rules.acceptTitle")} value={f.acceptTitle} onChange={(v) => set({ acceptTitle: v })} testId="rule-accept-title" />
          <Text label={t("rules.acceptDescription")} value={f.acceptDescription} onChange={(v) => set({ acceptDescription: v })} testId="rule-accept-description" area />
        </>
      )}
    </>
  );
}
