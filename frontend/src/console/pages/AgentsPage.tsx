// /agents: every agent with its status, gateway, board and last sighting; filters by
// status, gateway and board (server side) and by name (on the loaded rows); admins create,
// edit and delete.
import { useRoleAtLeast } from "../auth";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { useI18n } from "../../shared/i18n";
import { AgentForm } from "../fleet/AgentForm";
import { allBoards, allGateways, deleteAgent, keys, listAgents, useCursorList, type AgentFilter } from "../fleet/api";
import { AGENT_STATUSES, type Agent } from "../fleet/types";
import { FilterSelect, AgentStatusBadge, LoadMore, useTick, When } from "../fleet/ui";
import { useConfirm } from "../ui/Confirm";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";

const REFRESH_MS = 15_000;

export function AgentsPage() {
  const { t } = useI18n();
  const isAdmin = useRoleAtLeast("admin");
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  useTick(REFRESH_MS);
  const [filter, setFilter] = useState<AgentFilter>({ status: "", gateway_id: "", board_id: "" });
  const [search, setSearch] = useState("");
  const [editing, setEditing] = useState<Agent | "new" | null>(null);

  const list = useCursorList(keys.agentList(filter), (cursor) => listAgents(filter, cursor), {
    refetchInterval: REFRESH_MS,
  });
  const boards = useQuery({ queryKey: keys.boards, queryFn: allBoards, staleTime: 60_000 });
  const gateways = useQuery({ queryKey: keys.allGateways, queryFn: allGateways, staleTime: 60_000 });
  const boardName = useMemo(() => new Map((boards.data ?? []).map((b) => [b.id, b.name])), [boards.data]);
  const gatewayName = useMemo(() => new Map((gateways.data ?? []).map((g) => [g.id, g.name])), [gateways.data]);

  const needle = search.trim().toLowerCase();
  const rows = needle
    ? list.items.filter(
        (a) => a.name.toLowerCase().includes(needle) || (a.openclaw_agent_id ?? "").toLowerCase().includes(needle),
      )
    : list.items;

  const remove = useMutation({
    mutationFn: deleteAgent,
    onSuccess: () => {
      toast.success(t("fleet.agents.deleted"));
      void qc.invalidateQueries({ queryKey: keys.agents });
    },
    onError: toast.error,
  });
  const onDelete = async (a: Agent) => {
    const ok = await confirm({
      title: t("fleet.agents.deleteTitle", { name: a.name }),
      body: t("fleet.agents.deleteBody"),
      confirmLabel: t("common.delete"),
    });
    if (ok) remove.mutate(a.id);
  };

  return (
    <div className="stack">
      <div className="page-header">
        <h1>{t("fleet.agents.title")}</h1>
        <div className="spacer" />
        {isAdmin && (
          <button className="primary" onClick={() => setEditing("new")} data-testid="agent-create-open">
            {t("fleet.agents.create")}
          </button>
        )}
      </div>
      <div className="toolbar" role="search">
        <label>
          {t("common.search")}
          <input
            type="search"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            placeholder={t("fleet.agents.searchPlaceholder")}
            data-testid="agent-search"
          />
        </label>
        <FilterSelect
          label={t("fleet.filter.status")}
          allLabel={t("fleet.filter.allStatuses")}
          value={filter.status}
          choices={AGENT_STATUSES.map((s) => ({ value: s, label: t(`fleet.agentStatus.${s}`) }))}
          onChange={(v) => setFilter({ ...filter, status: v })}
          testId="agent-status-filter"
        />
        <FilterSelect
          label={t("fleet.agents.gateway")}
          allLabel={t("fleet.filter.all")}
          value={filter.gateway_id}
          choices={(gateways.data ?? []).map((g) => ({ value: g.id, label: g.name }))}
          onChange={(v) => setFilter({ ...filter, gateway_id: v })}
          testId="agent-gateway-filter"
        />
        <FilterSelect
          label={t("fleet.agents.board")}
          allLabel={t("fleet.filter.all")}
          value={filter.board_id}
          choices={(boards.data ?? []).map((b) => ({ value: b.id, label: b.name }))}
          onChange={(v) => setFilter({ ...filter, board_id: v })}
          testId="agent-board-filter"
        />
      </div>

      {list.isPending ? (
        <Skeleton />
      ) : list.error ? (
        <ErrorPanel error={list.error} />
      ) : rows.length === 0 ? (
        <Empty title={list.items.length === 0 ? t("fleet.agents.empty") : t("fleet.noMatches")} />
      ) : (
        <table data-testid="agent-table">
          <thead>
            <tr>
              <th scope="col">{t("common.name")}</th>
              <th scope="col">{t("common.status")}</th>
              <th scope="col">{t("fleet.agents.gateway")}</th>
              <th scope="col">{t("fleet.agents.board")}</th>
              <th scope="col">{t("fleet.agents.load")}</th>
              <th scope="col">{t("fleet.agents.lastSeen")}</th>
              {isAdmin && <th scope="col">{t("common.actions")}</th>}
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => (
              <tr key={a.id} data-testid="agent-row" data-agent-id={a.id} data-status={a.status}>
                <td>
                  {a.name}
                  {a.openclaw_agent_id && (
                    <div className="muted">
                      <code>{a.openclaw_agent_id}</code>
                    </div>
                  )}
                </td>
                <td>
                  <AgentStatusBadge status={a.status} />
                </td>
                <td>
                  {a.gateway_id ? (
                    <Link to={`/gateways/${a.gateway_id}`}>{gatewayName.get(a.gateway_id) ?? a.gateway_id.slice(0, 8)}</Link>
                  ) : (
                    <span className="muted">{t("fleet.agents.unbound")}</span>
                  )}
                </td>
                <td>
                  {a.board_id ? (
                    <Link to={`/boards/${a.board_id}`}>{boardName.get(a.board_id) ?? a.board_id.slice(0, 8)}</Link>
                  ) : (
                    <span className="muted">{t("common.none")}</span>
                  )}
                </td>
                <td>{a.current_load}</td>
                <td>
                  <When iso={a.last_seen_at} />
                </td>
                {isAdmin && (
                  <td>
                    <div className="row">
                      <button onClick={() => setEditing(a)} data-testid="agent-edit">
                        {t("common.edit")}
                      </button>
                      <button
                        className="danger"
                        onClick={() => void onDelete(a)}
                        disabled={remove.isPending}
                        data-testid="agent-delete"
                      >
                        {t("common.delete")}
                      </button>
                    </div>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="agent-load-more" />

      {editing && (
        <AgentForm
          agent={editing === "new" ? undefined : editing}
          boards={boards.data ?? []}
          gateways={gateways.data ?? []}
          onClose={() => setEditing(null)}
        />
      )}
    </div>
  );
}
