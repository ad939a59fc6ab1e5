// A gateway's live view: relay sockets (open, then recently closed) and the H5 chat
// sessions running on it, refreshed every few seconds.
import { useQuery } from "@tanstack/react-query";
import { useI18n } from "../../shared/i18n";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { gatewayConnections, keys } from "./api";
import { ShortId, When } from "./ui";

export const CONNECTIONS_REFRESH_MS = 5_000;

export function GatewayConnectionsPanel({ gatewayId }: { gatewayId: string }) {
  const { t } = useI18n();
  const q = useQuery({
    queryKey: keys.gatewayLive(gatewayId),
    queryFn: () => gatewayConnections(gatewayId),
    refetchInterval: CONNECTIONS_REFRESH_MS,
  });
  return (
    <section className="card stack" aria-labelledby="gw-live" data-testid="gateway-connections">
      <div className="row between">
        <h2 id="gw-live">{t("fleet.live.title")}</h2>
        <span className="muted">{t("fleet.gw.autoRefresh", { seconds: CONNECTIONS_REFRESH_MS / 1000 })}</span>
      </div>
      {q.isPending ? (
        <Skeleton rows={3} />
      ) : q.error ? (
        <ErrorPanel error={q.error} />
      ) : (
        <>
          <h3>{t("fleet.live.relay")}</h3>
          {q.data.relay_connections.length === 0 ? (
            <Empty title={t("fleet.live.noRelay")} />
          ) : (
            <table data-testid="relay-connections">
              <thead>
                <tr>
                  <th scope="col">{t("fleet.live.connection")}</th>
                  <th scope="col">{t("common.status")}</th>
                  <th scope="col">{t("fleet.live.instance")}</th>
                  <th scope="col">{t("fleet.live.remote")}</th>
                  <th scope="col">{t("fleet.live.connected")}</th>
                  <th scope="col">{t("fleet.live.closed")}</th>
                </tr>
              </thead>
              <tbody>
                {q.data.relay_connections.map((c) => (
                  <tr key={c.id} data-testid="relay-connection-row" data-open={!c.disconnected_at}>
                    <td>
                      <ShortId id={c.id} />
                    </td>
                    <td>
                      {c.disconnected_at ? (
                        <span className="badge">{t("fleet.live.stateClosed")}</span>
                      ) : (
                        <span className="badge ok">{t("fleet.live.stateOpen")}</span>
                      )}
                    </td>
                    <td>{c.relay_instance}</td>
                    <td>{c.remote_addr ?? "—"}</td>
                    <td>
                      <When iso={c.connected_at} />
                    </td>
                    <td>
                      {c.disconnected_at ? (
                        <>
                          <When iso={c.disconnected_at} />
                          {c.close_reason && <div className="muted">{c.close_reason}</div>}
                        </>
                      ) : (
                        "—"
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>{t("fleet.live.sessions")}</h3>
          {q.data.chat_sessions.length === 0 ? (
            <Empty title={t("fleet.live.noSessions")} />
          ) : (
            <table data-testid="chat-sessions">
              <thead>
                <tr>
                  <th scope="col">{t("fleet.live.agent")}</th>
                  <th scope="col">{t("fleet.live.user")}</th>
                  <th scope="col">{t("fleet.live.userSockets")}</th>
                  <th scope="col">{t("fleet.live.messages")}</th>
                  <th scope="col">{t("fleet.live.lastMessage")}</th>
                </tr>
              </thead>
              <tbody>
                {q.data.chat_sessions.map((s) => (
                  <tr key={s.id} data-testid="chat-session-row" data-session-id={s.id}>
                    <td>{s.agent_name}</td>
                    <td>
                      <ShortId id={s.h5_user_id} />
                    </td>
                    <td>
                      <span className={`badge ${s.user_connections > 0 ? "ok" : ""}`}>{s.user_connections}</span>
                    </td>
                    <td>{s.last_seq}</td>
                    <td>
                      <When iso={s.last_message_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
