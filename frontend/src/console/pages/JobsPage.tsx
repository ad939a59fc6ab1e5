// /jobs: queue depth, the job list with filters and details (retry, cancel), dead letters
// (replay, export) and the organization's schedules.
import { useState } from "react";
import { useI18n } from "../../shared/i18n";
import { keys, listJobs, useCursorList, type JobFilter } from "../fleet/api";
import { DeadLetters } from "../fleet/DeadLetters";
import { JobButtons, JobDetail } from "../fleet/JobActions";
import { QueueDepth } from "../fleet/QueueDepth";
import { Schedules } from "../fleet/Schedules";
import { JOB_PRIORITIES, JOB_STATES } from "../fleet/types";
import { FilterSelect, JobStateBadge, LoadMore, ShortId, useDebounced, useTick, When } from "../fleet/ui";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";

type Tab = "jobs" | "dead" | "schedules";
const TABS: Tab[] = ["jobs", "dead", "schedules"];
const TAB_TESTID: Record<Tab, string> = { jobs: "jobs-tab", dead: "deadletter-tab", schedules: "schedules-tab" };
const REFRESH_MS = 5_000;

export function JobsPage() {
  const { t } = useI18n();
  const [tab, setTab] = useState<Tab>("jobs");
  const [filter, setFilter] = useState<JobFilter>({ state: "", kind: "", priority: "" });
  const [open, setOpen] = useState<string | null>(null);
  useTick(15_000);

  return (
    <div className="stack">
      <div className="page-header">
        <h1>{t("fleet.jobs.title")}</h1>
      </div>
      <section className="card stack" aria-labelledby="depth-heading">
        <h2 id="depth-heading">{t("fleet.jobs.depth")}</h2>
        <QueueDepth
          onPick={(priority, state) => {
            // A cell narrows the job list to that tier and state.
            setFilter({ ...filter, priority, state });
            setTab("jobs");
          }}
        />
      </section>

      <div role="tablist" aria-label={t("fleet.jobs.title")} className="row">
        {TABS.map((k) => (
          <button
            key={k}
            role="tab"
            id={`tab-${k}`}
            aria-selected={tab === k}
            aria-controls={`panel-${k}`}
            className={tab === k ? "primary" : ""}
            onClick={() => setTab(k)}
            data-testid={TAB_TESTID[k]}
          >
            {t(`fleet.jobs.tab.${k}`)}
          </button>
        ))}
      </div>

      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === "jobs" && <JobList filter={filter} setFilter={setFilter} onOpen={setOpen} />}
        {tab === "dead" && <DeadLetters onOpen={setOpen} />}
        {tab === "schedules" && <Schedules />}
      </div>

      {open && <JobDetail jobId={open} onClose={() => setOpen(null)} />}
    </div>
  );
}

function JobList({
  filter,
  setFilter,
  onOpen,
}: {
  filter: JobFilter;
  setFilter: (f: JobFilter) => void;
  onOpen: (id: string) => void;
}) {
  const { t } = useI18n();
  const [kindInput, setKindInput] = useState(filter.kind);
  const kind = useDebounced(kindInput.trim(), 300);
  const effective: JobFilter = { ...filter, kind };
  const list = useCursorList(keys.jobList(effective), (cursor) => listJobs(effective, cursor), {
    refetchInterval: REFRESH_MS,
  });
  return (
    <section className="stack" aria-label={t("fleet.jobs.tab.jobs")}>
      <div className="toolbar" role="search">
        <FilterSelect
          label={t("fleet.jobs.state")}
          allLabel={t("fleet.filter.allStatuses")}
          value={filter.state}
          choices={JOB_STATES.map((s) => ({ value: s, label: t(`fleet.jobState.${s}`) }))}
          onChange={(v) => setFilter({ ...filter, state: v })}
          testId="job-state-filter"
        />
        <FilterSelect
          label={t("fleet.jobs.priority")}
          allLabel={t("fleet.filter.all")}
          value={filter.priority}
          choices={JOB_PRIORITIES.map((p) => ({ value: p, label: t(`fleet.priority.${p}`) }))}
          onChange={(v) => setFilter({ ...filter, priority: v })}
          testId="job-priority-filter"
        />
        <label>
          {t("fleet.jobs.kind")}
          <input
            value={kindInput}
            onChange={(e) => setKindInput(e.target.value)}
            placeholder={t("fleet.jobs.kindPlaceholder")}
            data-testid="job-kind-filter"
          />
        </label>
      </div>
      {list.isPending ? (
        <Skeleton />
      ) : list.error ? (
        <ErrorPanel error={list.error} />
      ) : list.items.length === 0 ? (
        <Empty title={t("fleet.jobs.empty")} />
      ) : (
        <table data-testid="job-table">
          <thead>
            <tr>
              <th scope="col">{t("fleet.jobs.id")}</th>
              <th scope="col">{t("fleet.jobs.kind")}</th>
              <th scope="col">{t("fleet.jobs.state")}</th>
              <th scope="col">{t("fleet.jobs.priority")}</th>
              <th scope="col">{t("fleet.jobs.attempts")}</th>
              <th scope="col">{t("fleet.jobs.enqueued")}</th>
              <th scope="col">{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((j) => (
              <tr key={j.id} data-testid="job-row" data-job-id={j.id} data-state={j.state}>
                <td>
                  <ShortId id={j.id} />
                </td>
                <td>
                  <code>{j.kind}</code>
                </td>
                <td>
                  <JobStateBadge state={j.state} />
                </td>
                <td>{t(`fleet.priority.${j.priority}`)}</td>
                <td>
                  {j.attempts} / {j.max_attempts}
                </td>
                <td>
                  <When iso={j.enqueued_at} />
                </td>
                <td>
                  <div className="row">
                    <button onClick={() => onOpen(j.id)} data-testid="job-open">
                      {t("fleet.jobs.details")}
                    </button>
                    <JobButtons job={j} />
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="job-load-more" />
    </section>
  );
}
