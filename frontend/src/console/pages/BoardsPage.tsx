// The boards of the organization: filter by group, "load more", create (admins) in a
// dialog, delete with confirmation; each board opens its Kanban.
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { Link } from "react-router-dom";
import type { Schema } from "../../shared/api/client";
import { useI18n } from "../../shared/i18n";
import { api, unwrap } from "../api";
import "../boards/boards.css";
import { CreateBoardModal } from "../boards/CreateBoardModal";
import { useBoardPerms } from "../boards/perms";
import { useConfirm } from "../ui/Confirm";
import { formatRelative } from "../ui/format";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";

type Board = Schema<"Board">;
type BoardGroup = Schema<"BoardGroup">;

const PAGE = 50;

export function BoardsPage() {
  const { t } = useI18n();
  const perms = useBoardPerms();
  const qc = useQueryClient();
  const ids = { group: useId(), archived: useId() };
  const [groupId, setGroupId] = useState("");
  const [archived, setArchived] = useState(false);
  const [creating, setCreating] = useState(false);

  const groups = useQuery({
    queryKey: ["board-groups"],
    queryFn: async () => unwrap(await api.GET("/api/v1/board-groups", { params: { query: { limit: 100 } } })).items,
  });
  const boards = useInfiniteQuery({
    queryKey: ["boards", { groupId, archived }],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) =>
      unwrap(
        await api.GET("/api/v1/boards", {
          params: {
            query: {
              limit: PAGE,
              ...(groupId ? { board_group_id: groupId } : {}),
              ...(archived ? { include_archived: true } : {}),
              ...(pageParam ? { cursor: pageParam } : {}),
            },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });

  const groupList = groups.data ?? [];
  const items = boards.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <section aria-labelledby="boards-title">
      <div className="page-header">
        <h1 id="boards-title">{t("nav.boards")}</h1>
        <div className="spacer" />
        {perms.manageBoards && (
          <button className="primary" onClick={() => setCreating(true)} data-testid="board-create-open">
            {t("boards.create.open")}
          </button>
        )}
      </div>
      <div className="toolbar">
        <label htmlFor={ids.group}>
          {t("boards.group")}
          <select id={ids.group} value={groupId} onChange={(e) => setGroupId(e.target.value)} data-testid="board-group-filter">
            <option value="">{t("boards.group.all")}</option>
            {groupList.map((g) => (
              <option key={g.id} value={g.id}>
                {g.name}
              </option>
            ))}
          </select>
        </label>
        <label className="inline checkbox" htmlFor={ids.archived}>
          <input
            id={ids.archived}
            type="checkbox"
            checked={archived}
            onChange={(e) => setArchived(e.target.checked)}
            data-testid="board-include-archived"
          />
          {t("boards.includeArchived")}
        </label>
      </div>

      {boards.isPending ? (
        <Skeleton rows={4} />
      ) : boards.isError ? (
        <ErrorPanel error={boards.error} />
      ) : items.length === 0 ? (
        <Empty title={groupId ? t("boards.empty.group") : t("boards.empty")}>
          {perms.manageBoards && <p>{t("boards.empty.hint")}</p>}
        </Empty>
      ) : (
        <ul className="grid board-list" data-testid="board-list">
          {items.map((b) => (
            <BoardCard key={b.id} board={b} groups={groupList} canDelete={perms.manageBoards} />
          ))}
        </ul>
      )}
      {boards.hasNextPage && (
        <div className="row end load-more">
          <button onClick={() => void boards.fetchNextPage()} disabled={boards.isFetchingNextPage} data-testid="boards-load-more">
            {t("common.loadMore")}
          </button>
        </div>
      )}

      {creating && (
        <CreateBoardModal
          groups={groupList}
          defaultGroupId={groupId || undefined}
          onClose={() => setCreating(false)}
          onCreated={() => {
            setCreating(false);
            void qc.invalidateQueries({ queryKey: ["boards"] });
          }}
        />
      )}
    </section>
  );
}

function BoardCard({ board, groups, canDelete }: { board: Board; groups: BoardGroup[]; canDelete: boolean }) {
  const { t, locale } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const [busy, setBusy] = useState(false);
  const group = board.board_group_id ? groups.find((g) => g.id === board.board_group_id) : undefined;

  const del = async () => {
    const ok = await confirm({
      title: t("boards.delete.title"),
      body: t("boards.delete.body", { name: board.name }),
      confirmLabel: t("common.delete"),
    });
    if (!ok) return;
    setBusy(true);
    try {
      unwrap(await api.DELETE("/api/v1/boards/{id}", { params: { path: { id: board.id } } }));
      toast.success(t("boards.deleted", { name: board.name }));
      await qc.invalidateQueries({ queryKey: ["boards"] });
    } catch (err) {
      toast.error(err);
      setBusy(false);
    }
  };

  return (
    <li className="card board-card" data-testid="board-card" data-board-id={board.id}>
      <h2 className="board-card-title">
        <Link to={`/boards/${board.id}`} data-testid="board-link" data-board-id={board.id}>
          {board.name}
        </Link>
      </h2>
      {board.objective && <p className="board-card-objective">{board.objective}</p>}
      {board.description && <p className="muted board-card-description">{board.description}</p>}
      <div className="row">
        {group && <span className="badge">{group.name}</span>}
        {board.archived_at && <span className="badge warn">{t("boards.archived")}</span>}
        {board.require_approval_for_done && <span className="badge">{t("boards.rule.approval")}</span>}
        {board.require_evidence_for_done && <span className="badge">{t("boards.rule.evidence")}</span>}
        <span className="muted">{t("boards.maxAgents.short", { count: board.max_agents })}</span>
      </div>
      <div className="row between">
        <span className="muted">{t("boards.updated", { when: formatRelative(board.updated_at, locale) })}</span>
        {canDelete && (
          <button
            className="danger"
            disabled={busy}
            onClick={() => void del()}
            aria-label={t("boards.delete.aria", { name: board.name })}
            data-testid="board-delete"
            data-board-id={board.id}
          >
            {t("common.delete")}
          </button>
        )}
      </div>
    </li>
  );
}
