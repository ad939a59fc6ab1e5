// /gateways: the fleet's gateways with their health (refreshed every 15 s) and, for
// admins, the registration tokens that let new gateways join.
import { useRoleAtLeast } from "../auth";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { useI18n } from "../../shared/i18n";
import { deleteGateway, keys, listGateways, useCursorList } from "../fleet/api";
import { RegistrationTokens } from "../fleet/RegistrationTokens";
import { GATEWAY_STATUSES, gatewayMetrics, type Gateway, type GatewayStatus } from "../fleet/types";
import { FilterSelect, GatewayHealthBadge, LoadMore, useTick } from "../fleet/ui";
import { useConfirm } from "../ui/Confirm";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";

export const GATEWAY_REFRESH_MS = 15_000;

export function GatewaysPage() {
  const { t } = useI18n();
  const isAdmin = useRoleAtLeast("admin");
  useTick(GATEWAY_REFRESH_MS);
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const [status, setStatus] = useState<GatewayStatus | "">("");
  const list = useCursorList(keys.gatewayList(status), (cursor) => listGateways(status, cursor), {
    refetchInterval: GATEWAY_REFRESH_MS,
  });

  const remove = useMutation({
    mutationFn: deleteGateway,
    onSuccess: () => {
      toast.success(t("fleet.gw.deleted"));
      void qc.invalidateQueries({ queryKey: keys.gateways });
      void qc.invalidateQueries({ queryKey: keys.agents });
    },
    onError: toast.error,
  });
  const onDelete = async (g: Gateway) => {
    const ok = await confirm({
      title: t("fleet.gw.deleteTitle", { name: g.name }),
      body: t("fleet.gw.deleteBody"),
      confirmLabel: t("common.delete"),
    });
    if (ok) remove.mutate(g.id);
  };

  return (
    <div className="stack">
      <div className="page-header">
        <h1>{t("fleet.gw.title")}</h1>
        <span className="muted">{t("fleet.gw.autoRefresh", { seconds: GATEWAY_REFRESH_MS / 1000 })}</span>
        <div className="spacer" />
        <FilterSelect
          label={t("fleet.filter.status")}
          allLabel={t("fleet.filter.allStatuses")}
          value={status}
          choices={GATEWAY_STATUSES.map((s) => ({ value: s, label: t(`fleet.gwStatus.${s}`) }))}
          onChange={(v) => setStatus(v)}
          testId="gateway-status-filter"
          hideLabel
        />
        <button onClick={list.refetch} disabled={list.isFetching} data-testid="gateway-refresh">
          {t("common.refresh")}
        </button>
      </div>

      <section aria-label={t("fleet.gw.title")}>
        {list.isPending ? (
          <Skeleton />
        ) : list.error ? (
          <ErrorPanel error={list.error} />
        ) : list.items.length === 0 ? (
          <Empty title={t("fleet.gw.empty")}>
            <p>{t("fleet.gw.emptyHelp")}</p>
          </Empty>
        ) : (
          <table data-testid="gateway-table">
            <thead>
              <tr>
                <th scope="col">{t("common.name")}</th>
                <th scope="col">{t("fleet.gw.health")}</th>
                <th scope="col">{t("fleet.gw.version")}</th>
                <th scope="col">{t("fleet.metrics.agents")}</th>
                <th scope="col">{t("fleet.metrics.sessions")}</th>
                <th scope="col">{t("fleet.metrics.cpu")}</th>
                <th scope="col">{t("fleet.metrics.memory")}</th>
                {isAdmin && <th scope="col">{t("common.actions")}</th>}
              </tr>
            </thead>
            <tbody>
              {list.items.map((g) => {
                const m = gatewayMetrics(g);
                return (
                  <tr key={g.id} data-testid="gateway-row" data-gateway-id={g.id} data-status={g.status}>
                    <td>
                      <Link to={`/gateways/${g.id}`} data-testid="gateway-link">
                        {g.name}
                      </Link>
                      {g.url && <div className="muted">{g.url}</div>}
                    </td>
                    <td>
                      <GatewayHealthBadge status={g.status} lastHeartbeat={g.last_heartbeat_at} />
                    </td>
                    <td>{g.version ?? "—"}</td>
                    <td>{m?.agent_count ?? "—"}</td>
                    <td>{m?.active_sessions ?? "—"}</td>
                    <td>{m?.cpu_pct !== undefined ? `${m.cpu_pct.toFixed(1)}%` : "—"}</td>
                    <td>{m?.memory_mb !== undefined ? `${Math.round(m.memory_mb)} MiB` : "—"}</td>
                    {isAdmin && (
                      <td>
                        <button
                          className="danger"
                          onClick={() => void onDelete(g)}
                          disabled={remove.isPending}
                          data-testid="gateway-delete"
                        >
                          {t("common.delete")}
                        </button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="gateway-load-more" />
      </section>

      {isAdmin && <RegistrationTokens />}
    </div>
  );
}
