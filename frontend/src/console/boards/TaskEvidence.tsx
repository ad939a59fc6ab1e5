// Evidence that a task was done: the list, and adding an item (PATCH replaces the list,
// guarded by the task's version so a concurrent change is not lost).
import { useId, useState } from "react";
import type { Schema } from "../../shared/api/client";
import { useI18n } from "../../shared/i18n";
import type { Task } from "../../shared/protocol/boardSync";
import { api, unwrap } from "../api";
import { useToast } from "../ui/Toasts";

type Evidence = Schema<"Evidence">;
type EvidenceKind = Schema<"EvidenceKind">;
const KINDS = ["link", "text", "file"] as const satisfies readonly EvidenceKind[];

function isHttp(v: string) {
  return /^https?:\/\//i.test(v);
}

export function TaskEvidence({ task, canEdit, onChanged }: { task: Task; canEdit: boolean; onChanged: (t: Task) => void }) {
  const { t } = useI18n();
  const toast = useToast();
  const id = useId();
  const [kind, setKind] = useState<EvidenceKind>("link");
  const [value, setValue] = useState("");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);

  const save = async (evidence: Evidence[], success: string) => {
    setBusy(true);
    try {
      const saved = unwrap(
        await api.PATCH("/api/v1/tasks/{id}", {
          params: { path: { id: task.id }, header: { "If-Match": String(task.version) } },
          body: { evidence },
        }),
      );
      onChanged(saved);
      toast.success(success);
      return true;
    } catch (err) {
      toast.error(err);
      return false;
    } finally {
      setBusy(false);
    }
  };

  const add = async () => {
    const item: Evidence = { kind, value: value.trim(), ...(note.trim() ? { note: note.trim() } : {}) };
    if (await save([...task.evidence, item], t("task.evidence.added"))) {
      setValue("");
      setNote("");
    }
  };

  return (
    <section className="task-section" aria-labelledby={`${id}-h`} data-testid="task-evidence">
      <h3 id={`${id}-h`}>{t("task.evidence.title")}</h3>
      {task.evidence.length === 0 ? (
        <p className="muted">{t("task.evidence.none")}</p>
      ) : (
        <ul className="plain-list">
          {task.evidence.map((e, i) => (
            <li key={i} className="row" data-testid="task-evidence-item">
              <span className="badge">{t(`task.evidence.kind.${e.kind}`)}</span>
              {e.kind === "link" && isHttp(e.value) ? (
                <a href={e.value} target="_blank" rel="noreferrer noopener">
                  {e.value}
                </a>
              ) : (
                <span className="evidence-value">{e.value}</span>
              )}
              {e.note && <span className="muted">— {e.note}</span>}
              <span className="spacer" />
              {canEdit && (
                <button
                  className="link"
                  disabled={busy}
                  onClick={() => void save(task.evidence.filter((_, j) => j !== i), t("task.evidence.removed"))}
                  aria-label={t("task.evidence.remove")}
                  data-testid="task-evidence-remove"
                >
                  {t("common.delete")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {canEdit && (
        <form
          className="evidence-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (value.trim()) void add();
          }}
        >
          <label htmlFor={`${id}-k`}>
            {t("task.evidence.kind")}
            <select id={`${id}-k`} value={kind} onChange={(e) => setKind(e.target.value as EvidenceKind)} data-testid="task-evidence-kind">
              {KINDS.map((k) => (
                <option key={k} value={k}>
                  {t(`task.evidence.kind.${k}`)}
                </option>
              ))}
            </select>
          </label>
          <label htmlFor={`${id}-v`}>
            {t("task.evidence.value")}
            <input id={`${id}-v`} value={value} maxLength={2000} onChange={(e) => setValue(e.target.value)} data-testid="task-evidence-value" />
          </label>
          <label htmlFor={`${id}-n`}>
            {t("task.evidence.note")}
            <input id={`${id}-n`} value={note} onChange={(e) => setNote(e.target.value)} data-testid="task-evidence-note" />
          </label>
          <button type="submit" disabled={!value.trim() || busy} data-testid="task-evidence-add">
            {t("task.evidence.add")}
          </button>
        </form>
      )}
    </section>
  );
}
