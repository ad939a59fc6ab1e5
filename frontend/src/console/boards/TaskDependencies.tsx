// What a task waits on (add by picking another task on the board, remove) and what waits
// on it. A dependency that would close a cycle is a 409, shown inline.
import { useId, useState } from "react";
import { ApiError } from "../../shared/api/errors";
import { useI18n } from "../../shared/i18n";
import type { Task } from "../../shared/protocol/boardSync";
import { api, unwrap } from "../api";
import { errorText, useToast } from "../ui/Toasts";

interface Props {
  task: Task;
  tasks: Record<string, Task>;
  canEdit: boolean;
  onChanged: (task: Task) => void;
}

export function TaskDependencies({ task, tasks, canEdit, onChanged }: Props) {
  const { t } = useI18n();
  const toast = useToast();
  const selectId = useId();
  const [pick, setPick] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const name = (id: string) => tasks[id]?.title ?? t("task.deps.unknown", { id: id.slice(0, 8) });
  const candidates = Object.values(tasks)
    .filter((x) => x.id !== task.id && !task.blocked_by.includes(x.id))
    .sort((a, b) => a.title.localeCompare(b.title));
  const dependents = Object.values(tasks).filter((x) => x.blocked_by.includes(task.id));

  const run = async (call: () => Promise<Task>, success: string) => {
    setBusy(true);
    setError(null);
    try {
      onChanged(await call());
      toast.success(success);
      setPick("");
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) setError(errorText(err));
      toast.error(err);
    } finally {
      setBusy(false);
    }
  };

  const add = () =>
    run(
      async () =>
        unwrap(
          await api.POST("/api/v1/tasks/{id}/dependencies", {
            params: { path: { id: task.id } },
            body: { depends_on_task_id: pick },
          }),
        ),
      t("task.deps.added"),
    );
  const remove = (dep: string) =>
    run(
      async () =>
        unwrap(
          await api.DELETE("/api/v1/tasks/{id}/dependencies/{depends_on}", {
            params: { path: { id: task.id, depends_on: dep } },
          }),
        ),
      t("task.deps.removed"),
    );

  return (
    <section className="task-section" aria-labelledby={`${selectId}-h`} data-testid="task-dependencies">
      <h3 id={`${selectId}-h`}>{t("task.deps.title")}</h3>
      {task.blocked_by.length === 0 ? (
        <p className="muted">{t("task.deps.none")}</p>
      ) : (
        <ul className="plain-list">
          {task.blocked_by.map((dep) => {
            const open = tasks[dep]?.status !== "done";
            return (
              <li key={dep} className="row" data-testid="task-dependency" data-task-id={dep}>
                <span className={`badge ${open ? "danger" : "ok"}`}>{open ? t("task.deps.blocking") : t("task.status.done")}</span>
                <span>{name(dep)}</span>
                <span className="spacer" />
                {canEdit && (
                  <button
                    className="link"
                    disabled={busy}
                    onClick={() => void remove(dep)}
                    aria-label={t("task.deps.remove", { title: name(dep) })}
                    data-testid="task-dependency-remove"
                  >
                    {t("common.delete")}
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {canEdit && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (pick) void add();
          }}
        >
          <label htmlFor={selectId} className="sr-only">
            {t("task.deps.pick")}
          </label>
          <select id={selectId} value={pick} onChange={(e) => setPick(e.target.value)} data-testid="task-dependency-select">
            <option value="">{t("task.deps.pick")}</option>
            {candidates.map((c) => (
              <option key={c.id} value={c.id}>
                {c.title}
              </option>
            ))}
          </select>
          <button type="submit" disabled={!pick || busy} data-testid="task-dependency-add">
            {t("task.deps.add")}
          </button>
        </form>
      )}
      {error && (
        <p className="error-panel" role="alert" data-testid="task-dependency-error">
          {error}
        </p>
      )}
      {dependents.length > 0 && (
        <p className="muted">
          {t("task.deps.dependents")} {dependents.map((d) => d.title).join(", ")}
        </p>
      )}
    </section>
  );
}
