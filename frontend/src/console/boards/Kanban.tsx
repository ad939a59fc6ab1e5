// The Kanban columns with native HTML5 drag and drop (the task id travels in
// dataTransfer; columns and cards accept drops) and keyboard moves on focused cards
// (Alt+←/→ changes column, Alt+↑/↓ reorders).
import { useRef, useState, type DragEvent } from "react";
import { useI18n } from "../../shared/i18n";
import { TASK_STATUSES, type Task, type TaskStatus } from "../../shared/protocol/boardSync";
import { QuickCreate } from "./QuickCreate";
import { positionAt, type CardView } from "./reducer";
import { TaskCard } from "./TaskCard";

const DRAG_TYPE = "application/x-mc-task";

interface Props {
  columns: Record<TaskStatus, CardView[]>;
  tasks: Record<string, Task>;
  canMove: boolean;
  canCreate: boolean;
  assigneeName: (task: Task) => string | null;
  onMove: (taskId: string, status: TaskStatus, position: number) => void;
  onCreate: (title: string, status: TaskStatus) => void;
  onOpen: (taskId: string) => void;
}

/** Where a dragged card would land. */
interface DropTarget {
  status: TaskStatus;
  index: number;
}

export function Kanban({ columns, tasks, canMove, canCreate, assigneeName, onMove, onCreate, onOpen }: Props) {
  const { t } = useI18n();
  const dragging = useRef<string | null>(null);
  const [target, setTarget] = useState<DropTarget | null>(null);

  /** Moves `taskId` to `index` of `status` (an index into the column as currently shown). */
  const place = (taskId: string, status: TaskStatus, index: number) => {
    const column = columns[status];
    const from = column.findIndex((c) => c.task.id === taskId);
    const others = column.filter((c) => c.task.id !== taskId).map((c) => c.task);
    // Removing the card from above its drop point shifts the drop point up by one.
    const at = from !== -1 && from < index ? index - 1 : index;
    if (from !== -1 && at === from) return;
    onMove(taskId, status, positionAt(others, at));
  };

  const taskFrom = (e: DragEvent) => e.dataTransfer.getData(DRAG_TYPE) || e.dataTransfer.getData("text/plain") || dragging.current;

  const onCardDragOver = (e: DragEvent<HTMLElement>, status: TaskStatus, index: number) => {
    if (!canMove) return;
    e.preventDefault();
    e.stopPropagation();
    e.dataTransfer.dropEffect = "move";
    const rect = e.currentTarget.getBoundingClientRect();
    const after = e.clientY > rect.top + rect.height / 2;
    const next = { status, index: after ? index + 1 : index };
    if (target?.status !== next.status || target.index !== next.index) setTarget(next);
  };

  const onCardDrop = (e: DragEvent<HTMLElement>, status: TaskStatus, index: number) => {
    if (!canMove) return;
    e.preventDefault();
    e.stopPropagation();
    const id = taskFrom(e);
    const rect = e.currentTarget.getBoundingClientRect();
    const after = e.clientY > rect.top + rect.height / 2;
    setTarget(null);
    dragging.current = null;
    if (id) place(id, status, after ? index + 1 : index);
  };

  const onColumnDrop = (e: DragEvent<HTMLElement>, status: TaskStatus) => {
    if (!canMove) return;
    e.preventDefault();
    const id = taskFrom(e);
    const index = target?.status === status ? target.index : columns[status].length;
    setTarget(null);
    dragging.current = null;
    if (id) place(id, status, index);
  };

  const onKeyMove = (card: CardView, key: string) => {
    const { status, id } = card.task;
    const col = TASK_STATUSES.indexOf(status as (typeof TASK_STATUSES)[number]);
    const index = columns[status].findIndex((c) => c.task.id === id);
    if (key === "ArrowLeft" && col > 0) place(id, TASK_STATUSES[col - 1], columns[TASK_STATUSES[col - 1]].length);
    else if (key === "ArrowRight" && col < TASK_STATUSES.length - 1) {
      place(id, TASK_STATUSES[col + 1], columns[TASK_STATUSES[col + 1]].length);
    } else if (key === "ArrowUp" && index > 0) place(id, status, index - 1);
    else if (key === "ArrowDown" && index < columns[status].length - 1) place(id, status, index + 2);
  };

  return (
    <div className="kanban" data-testid="kanban">
      {TASK_STATUSES.map((status) => {
        const cards = columns[status];
        const headingId = `kanban-col-${status}`;
        return (
          <section
            key={status}
            className={`kanban-column${target?.status === status ? " drop-target" : ""}`}
            data-testid="kanban-column"
            data-status={status}
            aria-labelledby={headingId}
            onDragOver={(e) => {
              if (!canMove) return;
              e.preventDefault();
              e.dataTransfer.dropEffect = "move";
              if (target?.status !== status) setTarget({ status, index: cards.length });
            }}
            onDragLeave={(e) => {
              if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setTarget(null);
            }}
            onDrop={(e) => onColumnDrop(e, status)}
          >
            <header className="kanban-column-header">
              <h2 id={headingId}>{t(`task.status.${status}`)}</h2>
              <span className="badge" aria-label={t("board.column.count", { count: cards.length })}>
                {cards.length}
              </span>
            </header>
            {canCreate && <QuickCreate status={status} onCreate={(title) => onCreate(title, status)} />}
            <ul className="kanban-cards">
              {cards.map((card, index) => (
                <li
                  key={card.task.id}
                  className={
                    target?.status === status && target.index === index
                      ? "drop-before"
                      : target?.status === status && target.index === index + 1 && index === cards.length - 1
                        ? "drop-after"
                        : undefined
                  }
                  onDragOver={(e) => onCardDragOver(e, status, index)}
                  onDrop={(e) => onCardDrop(e, status, index)}
                >
                  <TaskCard
                    card={card}
                    tasks={tasks}
                    assignee={assigneeName(card.task)}
                    draggable={canMove && !card.optimistic}
                    onOpen={() => !card.optimistic && onOpen(card.task.id)}
                    onKeyMove={canMove && !card.optimistic ? (key) => onKeyMove(card, key) : undefined}
                    onDragStart={(e) => {
                      dragging.current = card.task.id;
                      e.dataTransfer.setData(DRAG_TYPE, card.task.id);
                      e.dataTransfer.setData("text/plain", card.task.id);
                      e.dataTransfer.effectAllowed = "move";
                    }}
                    onDragEnd={() => {
                      dragging.current = null;
                      setTarget(null);
                    }}
                  />
                </li>
              ))}
            </ul>
            {cards.length === 0 && <p className="muted kanban-empty">{t("board.column.empty")}</p>}
          </section>
        );
      })}
    </div>
  );
}
