// Queue depth by priority (rows) and state (columns), with a bar per cell scaled to the
// largest count so a backlog stands out at a glance.
import { useQuery } from "@tanstack/react-query";
import { useI18n } from "../../shared/i18n";
import { ErrorPanel, Skeleton } from "../ui/States";
import { keys, queueDepth } from "./api";
import { JOB_PRIORITIES, JOB_STATES, type DepthRow, type JobPriority, type JobState } from "./types";

export const DEPTH_REFRESH_MS = 5_000;

export function depthMatrix(rows: DepthRow[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(`${r.priority}/${r.state}`, (m.get(`${r.priority}/${r.state}`) ?? 0) + r.count);
  return m;
}

export function QueueDepth({ onPick }: { onPick?: (priority: JobPriority, state: JobState) => void }) {
  const { t } = useI18n();
  const q = useQuery({ queryKey: keys.depth, queryFn: queueDepth, refetchInterval: DEPTH_REFRESH_MS });
  if (q.isPending) return <Skeleton rows={4} />;
  if (q.error) return <ErrorPanel error={q.error} />;
  const m = depthMatrix(q.data);
  const max = Math.max(1, ...m.values());
  const total = (s: JobState) => JOB_PRIORITIES.reduce((n, p) => n + (m.get(`${p}/${s}`) ?? 0), 0);
  return (
    <table data-testid="queue-depth" aria-label={t("fleet.jobs.depth")}>
      <thead>
        <tr>
          <th scope="col">{t("fleet.jobs.priority")}</th>
          {JOB_STATES.map((s) => (
            <th key={s} scope="col">
              {t(`fleet.jobState.${s}`)}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {JOB_PRIORITIES.map((p) => (
          <tr key={p} data-testid="queue-depth-row" data-priority={p}>
            <th scope="row">{t(`fleet.priority.${p}`)}</th>
            {JOB_STATES.map((s) => {
              const n = m.get(`${p}/${s}`) ?? 0;
              return (
                <td key={s} data-state={s} data-count={n}>
                  <button
                    className="link"
                    onClick={() => onPick?.(p, s)}
                    disabled={!onPick || n === 0}
                    aria-label={t("fleet.jobs.depthCell", { count: n, priority: t(`fleet.priority.${p}`), state: t(`fleet.jobState.${s}`) })}
                    data-testid="queue-depth-cell"
                  >
                    {n}
                  </button>
                  <div
                    aria-hidden="true"
                    style={{
                      height: 4,
                      marginTop: 2,
                      borderRadius: 2,
                      width: `${(n / max) * 100}%`,
                      background: s === "dead" ? "var(--danger)" : s === "pending" ? "var(--warn)" : "var(--accent)",
                    }}
                  />
                </td>
              );
            })}
          </tr>
        ))}
      </tbody>
      <tfoot>
        <tr>
          <th scope="row">{t("fleet.jobs.total")}</th>
          {JOB_STATES.map((s) => (
            <td key={s} data-testid={`queue-depth-total-${s}`}>
              <strong>{total(s)}</strong>
            </td>
          ))}
        </tr>
      </tfoot>
    </table>
  );
}
