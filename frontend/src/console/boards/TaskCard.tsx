// One card: title, priority, assignee, due date and a blocked badge. The whole card opens
// the task; it is draggable, and Alt+arrow keys move it when it has focus.
import type { DragEvent, KeyboardEvent } from "react";
import { useI18n } from "../../shared/i18n";
import type { Task } from "../../shared/protocol/boardSync";
import { isBlocked, type CardView } from "./reducer";

interface Props {
  card: CardView;
  tasks: Record<string, Task>;
  assignee: string | null;
  draggable: boolean;
  onOpen: () => void;
  onKeyMove?: (key: string) => void;
  onDragStart: (e: DragEvent<HTMLElement>) => void;
  onDragEnd: () => void;
}

const PRIORITY_CLASS: Record<string, string> = { critical: "danger", high: "warn", medium: "", low: "" };

export function dueLabel(iso: string | null | undefined, locale: string): string | null {
  if (!iso) return null;
  return new Date(iso).toLocaleDateString(locale, { month: "short", day: "numeric" });
}

export function TaskCard({ card, tasks, assignee, draggable, onOpen, onKeyMove, onDragStart, onDragEnd }: Props) {
  const { t, locale } = useI18n();
  const { task } = card;
  const blocked = !card.optimistic && isBlocked(task, tasks);
  const overdue = task.due_at && task.status !== "done" && new Date(task.due_at).getTime() < Date.now();
  const due = dueLabel(task.due_at, locale);

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.target !== e.currentTarget) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      onOpen();
    } else if (e.altKey && onKeyMove && e.key.startsWith("Arrow")) {
      e.preventDefault();
      onKeyMove(e.key);
      // Keep focus on the card after it moves (it re-renders elsewhere).
      const id = task.id;
      requestAnimationFrame(() => document.querySelector<HTMLElement>(`[data-task-id="${id}"]`)?.focus());
    }
  };

  return (
    <div
      className={`task-card${card.pending ? " pending" : ""}${blocked ? " blocked" : ""}`}
      role="button"
      tabIndex={0}
      draggable={draggable}
      aria-roledescription={t("board.card.role")}
      aria-describedby={onKeyMove ? "kanban-keyboard-help" : undefined}
      aria-busy={card.pending || undefined}
      data-testid="task-card"
      data-task-id={task.id}
      data-status={task.status}
      data-pending={card.pending ? "true" : undefined}
      onClick={onOpen}
      onKeyDown={onKeyDown}
      onDragStart={onDragStart}
      onDragEnd={onDragEnd}
    >
      <div className="task-card-title">{task.title}</div>
      <div className="task-card-meta">
        <span className={`badge ${PRIORITY_CLASS[task.priority] ?? ""}`} data-testid="task-card-priority">
          {t(`task.priority.${task.priority}`)}
        </span>
        {blocked && (
          <span className="badge danger" data-testid="task-card-blocked">
            {t("task.blocked")}
          </span>
        )}
        {due && (
          <span className={`task-card-due${overdue ? " overdue" : ""}`} title={t("task.due")}>
            {overdue ? t("task.overdue", { date: due }) : due}
          </span>
        )}
        {assignee && (
          <span className="task-card-assignee muted" title={t("task.assignee")}>
            {assignee}
          </span>
        )}
        {card.pending && <span className="muted">{t("board.card.saving")}</span>}
      </div>
    </div>
  );
}
