// /gateways/:gatewayId: one gateway's details, metrics, live connections and agents, with
// the admin actions (sync agents, rotate the relay token, delete).
import { useRoleAtLeast } from "../auth";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useI18n } from "../../shared/i18n";
import { allAgents, deleteGateway, getGateway, keys, rotateRelayToken, syncAgents } from "../fleet/api";
import { GatewayConnectionsPanel } from "../fleet/GatewayConnectionsPanel";
import { GatewayMetricsPanel } from "../fleet/GatewayMetricsPanel";
import { SecretOnce } from "../fleet/SecretOnce";
import type { Gateway, RotatedRelayToken } from "../fleet/types";
import { AgentStatusBadge, GatewayHealthBadge, useTick, When } from "../fleet/ui";
import { useConfirm } from "../ui/Confirm";
import { formatTime } from "../ui/format";
import { Modal } from "../ui/Modal";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";

const REFRESH_MS = 15_000;

export function GatewayDetailPage() {
  const { gatewayId = "" } = useParams();
  const { t } = useI18n();
  useTick(REFRESH_MS);
  const q = useQuery({
    queryKey: keys.gateway(gatewayId),
    queryFn: () => getGateway(gatewayId),
    refetchInterval: REFRESH_MS,
  });
  return (
    <div className="stack">
      <nav aria-label={t("fleet.gw.breadcrumb")}>
        <Link to="/gateways" data-testid="gateway-back">
          ← {t("fleet.gw.title")}
        </Link>
      </nav>
      {q.isPending ? (
        <Skeleton />
      ) : q.error ? (
        <ErrorPanel error={q.error} />
      ) : (
        <GatewayDetail gateway={q.data} />
      )}
    </div>
  );
}

function GatewayDetail({ gateway: g }: { gateway: Gateway }) {
  const { t, locale } = useI18n();
  const isAdmin = useRoleAtLeast("admin");
  const info = (g.connection_info && typeof g.connection_info === "object" ? g.connection_info : {}) as Record<
    string,
    unknown
  >;
  const rows: [string, ReactNode][] = [
    [t("fleet.gw.id"), <code key="id">{g.id}</code>],
    [t("fleet.gw.url"), g.url ?? "—"],
    [t("fleet.gw.version"), g.version ?? "—"],
    [t("fleet.gw.workspace"), g.workspace_root ?? "—"],
    [t("fleet.gw.ip"), typeof info.ip === "string" ? info.ip : "—"],
    [t("fleet.gw.autoRegistered"), g.auto_registered ? t("fleet.yes") : t("fleet.no")],
    [t("common.created"), formatTime(g.created_at, locale)],
    [t("fleet.gw.updated"), formatTime(g.updated_at, locale)],
  ];
  const caps = g.capabilities;
  const hasCaps = caps !== null && caps !== undefined && !(Array.isArray(caps) && caps.length === 0);
  return (
    <>
      <div className="page-header">
        <h1 data-testid="gateway-name">{g.name}</h1>
        <GatewayHealthBadge status={g.status} lastHeartbeat={g.last_heartbeat_at} />
        <div className="spacer" />
        {isAdmin && <GatewayActions gateway={g} />}
      </div>
      <section className="card" aria-labelledby="gw-details" data-testid="gateway-details">
        <h2 id="gw-details">{t("fleet.gw.details")}</h2>
        <dl className="grid" style={{ margin: 0 }}>
          {rows.map(([k, v]) => (
            <div key={k}>
              <dt className="muted">{k}</dt>
              <dd style={{ margin: 0, overflowWrap: "anywhere" }}>{v}</dd>
            </div>
          ))}
        </dl>
        {hasCaps && (
          <>
            <h3>{t("fleet.gw.capabilities")}</h3>
            <pre>{JSON.stringify(caps, null, 2)}</pre>
          </>
        )}
      </section>
      <GatewayMetricsPanel gatewayId={g.id} refetchInterval={REFRESH_MS} />
      <GatewayConnectionsPanel gatewayId={g.id} />
      <GatewayAgents gatewayId={g.id} />
    </>
  );
}

function GatewayActions({ gateway: g }: { gateway: Gateway }) {
  const { t, locale } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const [rotating, setRotating] = useState(false);
  const [rotated, setRotated] = useState<RotatedRelayToken | null>(null);

  const sync = useMutation({
    mutationFn: () => syncAgents(g.id),
    onSuccess: (r) => {
      toast.success(t("fleet.gw.synced", { created: r.created, online: r.online, offline: r.offline }));
      void qc.invalidateQueries({ queryKey: keys.agents });
    },
    onError: toast.error,
  });
  const remove = useMutation({
    mutationFn: () => deleteGateway(g.id),
    onSuccess: () => {
      toast.success(t("fleet.gw.deleted"));
      void qc.invalidateQueries({ queryKey: keys.gateways });
      void qc.invalidateQueries({ queryKey: keys.agents });
      navigate("/gateways");
    },
    onError: toast.error,
  });
  const onDelete = async () => {
    const ok = await confirm({
      title: t("fleet.gw.deleteTitle", { name: g.name }),
      body: t("fleet.gw.deleteBody"),
      confirmLabel: t("common.delete"),
    });
    if (ok) remove.mutate();
  };
  return (
    <div className="row">
      <button onClick={() => sync.mutate()} disabled={sync.isPending} data-testid="gateway-sync-agents">
        {t("fleet.gw.sync")}
      </button>
      <button onClick={() => setRotating(true)} data-testid="gateway-rotate-open">
        {t("fleet.gw.rotate")}
      </button>
      <button className="danger" onClick={() => void onDelete()} disabled={remove.isPending} data-testid="gateway-delete">
        {t("common.delete")}
      </button>
      {rotating && (
        <RotateDialog
          gatewayId={g.id}
          onClose={() => setRotating(false)}
          onRotated={(r) => {
            setRotating(false);
            setRotated(r);
          }}
        />
      )}
      {rotated && (
        <SecretOnce
          title={t("fleet.gw.rotatedTitle")}
          secret={rotated.relay_token}
          note={t("fleet.gw.rotatedNote", { until: formatTime(rotated.previous_valid_until, locale) })}
          onClose={() => setRotated(null)}
        />
      )}
    </div>
  );
}

function RotateDialog({
  gatewayId,
  onClose,
  onRotated,
}: {
  gatewayId: string;
  onClose: () => void;
  onRotated: (r: RotatedRelayToken) => void;
}) {
  const { t } = useI18n();
  const toast = useToast();
  const [grace, setGrace] = useState("300");
  const n = Number(grace);
  const valid = grace.trim() !== "" && Number.isInteger(n) && n >= 0 && n <= 86400;
  const rotate = useMutation({
    mutationFn: () => rotateRelayToken(gatewayId, n),
    onSuccess: (r) => {
      toast.success(t("fleet.gw.rotated"));
      onRotated(r);
    },
    onError: toast.error,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (valid) rotate.mutate();
  };
  return (
    <Modal title={t("fleet.gw.rotate")} onClose={onClose}>
      <form onSubmit={submit}>
        <p>{t("fleet.gw.rotateBody")}</p>
        <label>
          {t("fleet.gw.grace")}
          <input
            type="number"
            min={0}
            max={86400}
            step={1}
            value={grace}
            onChange={(e) => setGrace(e.target.value)}
            aria-invalid={!valid}
            data-testid="gateway-rotate-grace"
          />
        </label>
        <div className="row end">
          <button type="button" onClick={onClose} data-testid="gateway-rotate-cancel">
            {t("common.cancel")}
          </button>
          <button type="submit" className="danger" disabled={!valid || rotate.isPending} data-testid="gateway-rotate-submit">
            {t("fleet.gw.rotate")}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function GatewayAgents({ gatewayId }: { gatewayId: string }) {
  const { t } = useI18n();
  const q = useQuery({
    queryKey: [...keys.agents, "gateway", gatewayId],
    queryFn: () => allAgents({ gateway_id: gatewayId }),
    refetchInterval: REFRESH_MS,
  });
  return (
    <section className="card stack" aria-labelledby="gw-agents" data-testid="gateway-agents">
      <h2 id="gw-agents">{t("fleet.gw.agents")}</h2>
      {q.isPending ? (
        <Skeleton rows={3} />
      ) : q.error ? (
        <ErrorPanel error={q.error} />
      ) : q.data.length === 0 ? (
        <Empty title={t("fleet.gw.noAgents")} />
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("common.name")}</th>
              <th scope="col">{t("common.status")}</th>
              <th scope="col">{t("fleet.agents.openclawId")}</th>
              <th scope="col">{t("fleet.agents.load")}</th>
              <th scope="col">{t("fleet.agents.lastSeen")}</th>
            </tr>
          </thead>
          <tbody>
            {q.data.map((a) => (
              <tr key={a.id} data-testid="agent-row" data-agent-id={a.id}>
                <td>{a.name}</td>
                <td>
                  <AgentStatusBadge status={a.status} />
                </td>
                <td>{a.openclaw_agent_id ? <code>{a.openclaw_agent_id}</code> : "—"}</td>
                <td>{a.current_load}</td>
                <td>
                  <When iso={a.last_seen_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
