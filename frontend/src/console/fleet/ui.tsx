// Small widgets shared by the fleet pages: status badges, "load more", the admin check.
import { useEffect, useState } from "react";
import { useI18n } from "../../shared/i18n";
import { formatRelative, formatTime } from "../ui/format";
import type { AgentStatus, GatewayStatus, H5UserStatus, JobState } from "./types";

type Tone = "ok" | "warn" | "danger" | "";

const GATEWAY_TONE: Record<GatewayStatus, Tone> = { online: "ok", pending: "warn", offline: "", error: "danger" };
const AGENT_TONE: Record<AgentStatus, Tone> = { online: "ok", busy: "warn", offline: "", error: "danger" };
const H5_TONE: Record<H5UserStatus, Tone> = { active: "ok", suspended: "danger", deleted: "" };
const JOB_TONE: Record<JobState, Tone> = {
  pending: "warn",
  running: "ok",
  completed: "",
  dead: "danger",
  cancelled: "",
};

/** Health of a gateway: its status and how long ago it last sent a heartbeat. */
export function GatewayHealthBadge({ status, lastHeartbeat }: { status: GatewayStatus; lastHeartbeat?: string | null }) {
  const { t, locale } = useI18n();
  const label = t(`fleet.gwStatus.${status}`);
  const seen = lastHeartbeat ? formatRelative(lastHeartbeat, locale) : t("fleet.gw.neverSeen");
  return (
    <span className="row" data-testid="gateway-health" data-status={status}>
      <span className={`badge ${GATEWAY_TONE[status] ?? ""}`} title={formatTime(lastHeartbeat, locale)}>
        <span aria-hidden="true">●</span> {label}
      </span>
      <span className="muted">{t("fleet.gw.heartbeat", { when: seen })}</span>
    </span>
  );
}

export function AgentStatusBadge({ status }: { status: AgentStatus }) {
  const { t } = useI18n();
  return (
    <span className={`badge ${AGENT_TONE[status] ?? ""}`} data-testid="agent-status" data-status={status}>
      {t(`fleet.agentStatus.${status}`)}
    </span>
  );
}

export function H5StatusBadge({ status }: { status: H5UserStatus }) {
  const { t } = useI18n();
  return (
    <span className={`badge ${H5_TONE[status] ?? ""}`} data-testid="h5user-status" data-status={status}>
      {t(`fleet.h5Status.${status}`)}
    </span>
  );
}

export function JobStateBadge({ state }: { state: JobState }) {
  const { t } = useI18n();
  return (
    <span className={`badge ${JOB_TONE[state] ?? ""}`} data-testid="job-state" data-state={state}>
      {t(`fleet.jobState.${state}`)}
    </span>
  );
}

export function LoadMore({
  hasMore,
  loading,
  onClick,
  testId,
}: {
  hasMore: boolean;
  loading: boolean;
  onClick: () => void;
  testId: string;
}) {
  const { t } = useI18n();
  if (!hasMore) return null;
  return (
    <div className="row end" style={{ marginTop: "0.5rem" }}>
      <button onClick={onClick} disabled={loading} data-testid={testId}>
        {t("common.loadMore")}
      </button>
    </div>
  );
}

/** A relative time with the absolute one on hover. */
export function When({ iso }: { iso: string | null | undefined }) {
  const { locale } = useI18n();
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={formatTime(iso, locale)}>
      {formatRelative(iso, locale)}
    </time>
  );
}

/** Short form of a UUID for tables (the full one is in the title). */
export function ShortId({ id }: { id: string }) {
  return (
    <code title={id} className="muted">
      {id.slice(0, 8)}
    </code>
  );
}

/** Re-renders every `ms` so relative times ("2 minutes ago") stay true between fetches. */
export function useTick(ms: number): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const id = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(id);
  }, [ms]);
}

/** `value`, once it has stopped changing for `ms` (search boxes query the API on pause). */
export function useDebounced<T>(value: T, ms = 300): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}

/** One choice of a filter select. */
export interface Choice {
  value: string;
  label: string;
}

/**
 * A labelled filter select whose first option ("all") is the empty value. `hideLabel`
 * keeps the label for screen readers only (compact toolbars).
 */
export function FilterSelect<V extends string>({
  label,
  allLabel,
  value,
  choices,
  onChange,
  testId,
  hideLabel = false,
}: {
  label: string;
  allLabel: string;
  value: V | "";
  choices: Choice[];
  onChange: (value: V | "") => void;
  testId: string;
  hideLabel?: boolean;
}) {
  return (
    <label className={hideLabel ? "inline" : undefined}>
      {hideLabel ? <span className="sr-only">{label}</span> : label}
      <select value={value} onChange={(e) => onChange(e.target.value as V | "")} data-testid={testId}>
        <option value="">{allLabel}</option>
        {choices.map((c) => (
          <option key={c.value} value={c.value}>
            {c.label}
          </option>
        ))}
      </select>
    </label>
  );
}
