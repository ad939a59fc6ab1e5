// The task slide-over: edit, status, dependencies, evidence, comments, approvals, delete.
import { useEffect, useId, useState } from "react";
import type { Schema } from "../../shared/api/client";
import { ApiError } from "../../shared/api/errors";
import { useI18n } from "../../shared/i18n";
import { TASK_PRIORITIES, TASK_STATUSES, type Task, type TaskPriority, type TaskStatus } from "../../shared/protocol/boardSync";
import { api, unwrap } from "../api";
import { useConfirm } from "../ui/Confirm";
import { SlideOver } from "../ui/Modal";
import { formatTime } from "../ui/format";
import { useToast } from "../ui/Toasts";
import type { People } from "./people";
import type { BoardPerms } from "./perms";
import { isBlocked } from "./reducer";
import { TaskApprovals } from "./TaskApprovals";
import { TaskComments } from "./TaskComments";
import { TaskDependencies } from "./TaskDependencies";
import { TaskEvidence } from "./TaskEvidence";

interface Props {
  task: Task;
  tasks: Record<string, Task>;
  perms: BoardPerms;
  people: People;
  onClose: () => void;
  onMove: (status: TaskStatus) => void;
  onSaved: (task: Task) => void;
  onDeleted: (taskId: string) => void;
}

interface Draft {
  title: string;
  description: string;
  priority: TaskPriority;
  /** `agent:<id>`, `user:<id>` or "" for nobody. */
  assignee: string;
  /** `datetime-local` value, "" for none. */
  due: string;
}

/** An ISO time as a `datetime-local` value in the browser's zone. */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function draftOf(task: Task): Draft {
  return {
    title: task.title,
    description: task.description ?? "",
    priority: task.priority,
    assignee: task.assignee_agent_id ? `agent:${task.assignee_agent_id}` : task.assignee_user_id ? `user:${task.assignee_user_id}` : "",
    due: toLocalInput(task.due_at),
  };
}

function sameDraft(a: Draft, b: Draft) {
  return a.title === b.title && a.description === b.description && a.priority === b.priority && a.assignee === b.assignee && a.due === b.due;
}

export function TaskDetail({ task, tasks, perms, people, onClose, onMove, onSaved, onDeleted }: Props) {
  const { t, locale } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const ids = { title: useId(), desc: useId(), prio: useId(), assignee: useId(), due: useId(), status: useId() };
  const [base, setBase] = useState(() => draftOf(task));
  const [draft, setDraft] = useState(base);
  const [saving, setSaving] = useState(false);
  const dirty = !sameDraft(base, draft);

  // Someone else changed the task: follow along unless the user is mid-edit.
  useEffect(() => {
    const fresh = draftOf(task);
    setBase(fresh);
    setDraft((d) => (sameDraft(d, base) ? fresh : d));
  }, [task.version]);

  const save = async () => {
    if (!draft.title.trim()) {
      toast.error(new Error(t("task.titleRequired")));
      return;
    }
    setSaving(true);
    const body: Schema<"UpdateTask"> = {};
    if (draft.title !== base.title) body.title = draft.title.trim();
    if (draft.description !== base.description) body.description = draft.description || null;
    if (draft.priority !== base.priority) body.priority = draft.priority;
    if (draft.assignee !== base.assignee) {
      const [kind, id] = draft.assignee.split(":");
      body.assignee_agent_id = kind === "agent" ? id : null;
      body.assignee_user_id = kind === "user" ? id : null;
    }
    if (draft.due !== base.due) body.due_at = draft.due ? new Date(draft.due).toISOString() : null;
    try {
      const saved = unwrap(
        await api.PATCH("/api/v1/tasks/{id}", {
          params: { path: { id: task.id }, header: { "If-Match": String(task.version) } },
          body,
        }),
      );
      onSaved(saved);
      const fresh = draftOf(saved);
      setBase(fresh);
      setDraft(fresh);
      toast.success(t("common.saved"));
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) {
        toast.error(new Error(t("task.staleEdit")));
        setDraft(draftOf(task));
      } else {
        toast.error(err);
      }
    } finally {
      setSaving(false);
    }
  };

  const del = async () => {
    const ok = await confirm({ title: t("task.delete.title"), body: t("task.delete.body", { title: task.title }), confirmLabel: t("common.delete") });
    if (!ok) return;
    try {
      unwrap(await api.DELETE("/api/v1/tasks/{id}", { params: { path: { id: task.id } } }));
      onDeleted(task.id);
      toast.success(t("common.deleted"));
    } catch (err) {
      toast.error(err);
    }
  };

  const readOnly = !perms.updateTasks;
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));

  return (
    <SlideOver title={task.title} onClose={onClose} testId="task-detail">
      <div className="stack task-detail">
        <div className="row">
          <label className="inline" htmlFor={ids.status}>
            <span>{t("common.status")}</span>
          </label>
          <select
            id={ids.status}
            value={task.status}
            disabled={!perms.moveTasks}
            onChange={(e) => onMove(e.target.value as TaskStatus)}
            data-testid="task-status-select"
          >
            {TASK_STATUSES.map((s) => (
              <option key={s} value={s}>
                {t(`task.status.${s}`)}
              </option>
            ))}
          </select>
          {isBlocked(task, tasks) && <span className="badge danger">{t("task.blocked")}</span>}
          <span className="muted">{t("task.version", { version: task.version })}</span>
        </div>

        <form
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <label htmlFor={ids.title}>
            {t("task.title")}
            <input
              id={ids.title}
              value={draft.title}
              maxLength={500}
              required
              readOnly={readOnly}
              onChange={(e) => set("title", e.target.value)}
              data-testid="task-title-input"
            />
          </label>
          <label htmlFor={ids.desc}>
            {t("task.description")}
            <textarea
              id={ids.desc}
              value={draft.description}
              readOnly={readOnly}
              onChange={(e) => set("description", e.target.value)}
              data-testid="task-description-input"
            />
          </label>
          <div className="task-detail-grid">
            <label htmlFor={ids.prio}>
              {t("task.priority")}
              <select
                id={ids.prio}
                value={draft.priority}
                disabled={readOnly}
                onChange={(e) => set("priority", e.target.value as TaskPriority)}
                data-testid="task-priority-select"
              >
                {TASK_PRIORITIES.map((p) => (
                  <option key={p} value={p}>
                    {t(`task.priority.${p}`)}
                  </option>
                ))}
              </select>
            </label>
            <label htmlFor={ids.assignee}>
              {t("task.assignee")}
              <select
                id={ids.assignee}
                value={draft.assignee}
                disabled={readOnly}
                onChange={(e) => set("assignee", e.target.value)}
                data-testid="task-assignee-select"
              >
                <option value="">{t("task.unassigned")}</option>
                <optgroup label={t("task.assignee.agents")}>
                  {people.agents.map((a) => (
                    <option key={a.id} value={`agent:${a.id}`}>
                      {a.name}
                    </option>
                  ))}
                </optgroup>
                <optgroup label={t("task.assignee.members")}>
                  {people.members.map((m) => (
                    <option key={m.user.id} value={`user:${m.user.id}`}>
                      {m.user.display_name ?? m.user.email}
                    </option>
                  ))}
                </optgroup>
                {/* Keep an assignee we cannot list (e.g. beyond the first page) selectable. */}
                {draft.assignee &&
                  !people.agents.some((a) => `agent:${a.id}` === draft.assignee) &&
                  !people.members.some((m) => `user:${m.user.id}` === draft.assignee) && (
                    <option value={draft.assignee}>{people.assigneeName(task) ?? draft.assignee}</option>
                  )}
              </select>
            </label>
            <label htmlFor={ids.due}>
              {t("task.due")}
              <input
                id={ids.due}
                type="datetime-local"
                value={draft.due}
                readOnly={readOnly}
                onChange={(e) => set("due", e.target.value)}
                data-testid="task-due-input"
              />
            </label>
          </div>
          {!readOnly && (
            <div className="row end">
              <button type="button" disabled={!dirty || saving} onClick={() => setDraft(base)} data-testid="task-reset">
                {t("common.cancel")}
              </button>
              <button type="submit" className="primary" disabled={!dirty || saving} data-testid="task-save">
                {t("common.save")}
              </button>
            </div>
          )}
        </form>
        <p className="muted task-detail-times">
          {t("task.createdAt", { time: formatTime(task.created_at, locale) })} ·{" "}
          {t("task.updatedAt", { time: formatTime(task.updated_at, locale) })}
          {task.completed_at && <> · {t("task.completedAt", { time: formatTime(task.completed_at, locale) })}</>}
        </p>

        <TaskDependencies task={task} tasks={tasks} canEdit={perms.updateTasks} onChanged={onSaved} />
        <TaskEvidence task={task} canEdit={perms.updateTasks} onChanged={onSaved} />
        <TaskApprovals task={task} perms={perms} />
        <TaskComments taskId={task.id} canComment={perms.createTasks} />

        {perms.deleteTasks && (
          <div className="row end">
            <button className="danger" onClick={() => void del()} data-testid="task-delete">
              {t("task.delete.button")}
            </button>
          </div>
        )}
      </div>
    </SlideOver>
  );
}
