// One board as a live Kanban: columns fed by the board sync socket, drag and drop, quick
// create, and the task slide-over (its id in `?task=` so a task can be linked to).
import { useEffect, useMemo } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { useI18n } from "../../shared/i18n";
import "../boards/boards.css";
import { Kanban } from "../boards/Kanban";
import { usePeople } from "../boards/people";
import { useBoardPerms } from "../boards/perms";
import { columns, visibleTasks } from "../boards/reducer";
import { LiveIndicator, SyncBanner } from "../boards/SyncIndicator";
import { TaskDetail } from "../boards/TaskDetail";
import { useBoardSync } from "../boards/useBoardSync";
import { SuggestionStrip } from "../suggestions/Strip";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";

export function BoardPage() {
  const { boardId = "" } = useParams();
  // A fresh page (and socket) per board.
  return <Board key={boardId} boardId={boardId} />;
}

function Board({ boardId }: { boardId: string }) {
  const { t } = useI18n();
  const toast = useToast();
  const perms = useBoardPerms();
  const people = usePeople();
  const sync = useBoardSync(boardId);
  const { state, status } = sync;
  const [search, setSearch] = useSearchParams();
  const openId = search.get("task");
  const cols = useMemo(() => columns(state), [state]);
  // The open task as shown on the board, so a move in flight shows in its status too.
  const openTask = useMemo(
    () => (openId ? visibleTasks(state).find((c) => c.task.id === openId && !c.optimistic)?.task : undefined),
    [openId, state],
  );

  const open = (taskId: string | null) => {
    const next = new URLSearchParams(search);
    if (taskId) next.set("task", taskId);
    else next.delete("task");
    setSearch(next, { replace: !taskId });
  };

  // The open task was deleted (here or elsewhere): close the slide-over.
  useEffect(() => {
    if (openId && state.loaded && state.deleted[openId]) {
      toast.info(t("task.deletedElsewhere"));
      open(null);
    }
  }, [openId, state.loaded, state.deleted]);

  useEffect(() => {
    if (state.board) document.title = `${state.board.name} · ${t("app.title")}`;
  }, [state.board, t]);

  if (state.boardDeleted || status === "forbidden") {
    return (
      <Empty title={state.boardDeleted ? t("board.deleted") : t("board.forbidden")}>
        <Link to="/boards" data-testid="board-back">
          {t("board.back")}
        </Link>
      </Empty>
    );
  }
  if (!state.loaded) {
    return (
      <section aria-busy="true">
        {sync.loadError ? <ErrorPanel error={sync.loadError} /> : <Skeleton rows={6} />}
      </section>
    );
  }

  const board = state.board;
  return (
    <section className="board-page" aria-labelledby="board-title">
      <div className="page-header">
        <Link to="/boards" className="muted" data-testid="board-back">
          ← {t("nav.boards")}
        </Link>
        <h1 id="board-title" data-testid="board-title">
          {board?.name}
        </h1>
        <LiveIndicator status={status} />
        {board?.require_approval_for_done && <span className="badge warn">{t("boards.rule.approval")}</span>}
        {board?.require_evidence_for_done && <span className="badge warn">{t("boards.rule.evidence")}</span>}
      </div>
      {(board?.objective || board?.description) && (
        <div className="board-about">
          {board?.objective && (
            <p>
              <strong>{t("boards.objective")}:</strong> {board.objective}
            </p>
          )}
          {board?.description && <p className="muted">{board.description}</p>}
        </div>
      )}
      <SyncBanner status={status} />
      <SuggestionStrip boardId={boardId} />
      <p id="kanban-keyboard-help" className="sr-only">
        {t("board.keyboardHelp")}
      </p>
      <Kanban
        columns={cols}
        tasks={state.tasks}
        canMove={perms.moveTasks}
        canCreate={perms.createTasks}
        assigneeName={people.assigneeName}
        onMove={sync.move}
        onCreate={(title, s) => sync.create(title, s)}
        onOpen={open}
      />
      {openTask && (
        <TaskDetail
          key={openTask.id}
          task={openTask}
          tasks={state.tasks}
          perms={perms}
          people={people}
          onClose={() => open(null)}
          onMove={(s) => sync.move(openTask.id, s)}
          onSaved={sync.upsert}
          onDeleted={(id) => {
            sync.remove(id);
            open(null);
          }}
        />
      )}
    </section>
  );
}
