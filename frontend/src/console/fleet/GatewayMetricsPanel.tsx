// A gateway's heartbeat metrics: one sparkline per figure and the latest samples.
import { useQuery } from "@tanstack/react-query";
import { useI18n } from "../../shared/i18n";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { gatewayMetricsHistory, keys } from "./api";
import { Sparkline } from "./Sparkline";
import type { MetricsSample } from "./types";
import { When } from "./ui";

const FIGURES = [
  ["cpu_pct", "fleet.metrics.cpu", (v: number) => `${v.toFixed(1)}%`],
  ["memory_mb", "fleet.metrics.memory", (v: number) => `${Math.round(v)} MiB`],
  ["active_sessions", "fleet.metrics.sessions", (v: number) => String(v)],
  ["agent_count", "fleet.metrics.agents", (v: number) => String(v)],
] as const;

export function GatewayMetricsPanel({ gatewayId, refetchInterval }: { gatewayId: string; refetchInterval: number }) {
  const { t } = useI18n();
  const q = useQuery({
    queryKey: keys.gatewayMetrics(gatewayId),
    queryFn: () => gatewayMetricsHistory(gatewayId, 60),
    refetchInterval,
  });
  return (
    <section className="card stack" aria-labelledby="gw-metrics" data-testid="gateway-metrics">
      <h2 id="gw-metrics">{t("fleet.metrics.title")}</h2>
      {q.isPending ? (
        <Skeleton rows={3} />
      ) : q.error ? (
        <ErrorPanel error={q.error} />
      ) : q.data.length === 0 ? (
        <Empty title={t("fleet.metrics.empty")} />
      ) : (
        <MetricsBody samples={q.data} />
      )}
    </section>
  );
}

function MetricsBody({ samples }: { samples: MetricsSample[] }) {
  const { t } = useI18n();
  // The API answers newest first; charts read oldest → newest.
  const chrono = [...samples].reverse();
  const latest = samples[0];
  return (
    <>
      <div className="grid">
        {FIGURES.map(([key, label, fmt]) => (
          <div key={key} className="stack" style={{ gap: "0.25rem" }}>
            <div className="row between">
              <span className="muted">{t(label)}</span>
              <strong data-testid={`metric-${key}`}>{fmt(latest[key])}</strong>
            </div>
            <Sparkline
              values={chrono.map((s) => s[key])}
              label={t("fleet.metrics.trend", { figure: t(label), count: chrono.length })}
              testId={`sparkline-${key}`}
            />
          </div>
        ))}
      </div>
      <details>
        <summary data-testid="metrics-samples-toggle">{t("fleet.metrics.samples", { count: samples.length })}</summary>
        <table data-testid="metrics-table">
          <thead>
            <tr>
              <th scope="col">{t("fleet.metrics.at")}</th>
              {FIGURES.map(([key, label]) => (
                <th key={key} scope="col">
                  {t(label)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {samples.slice(0, 20).map((s, i) => (
              <tr key={`${s.recorded_at}-${i}`}>
                <td>
                  <When iso={s.recorded_at} />
                </td>
                {FIGURES.map(([key, , fmt]) => (
                  <td key={key}>{fmt(s[key])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </>
  );
}
