// Retry and cancel of one job (operators and admins), and the job detail panel with its
// attempt history.
import { useRoleAtLeast } from "../auth";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useI18n } from "../../shared/i18n";
import { useConfirm } from "../ui/Confirm";
import { formatTime } from "../ui/format";
import { SlideOver } from "../ui/Modal";
import { ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";
import { cancelJob, getJob, keys, retryJob } from "./api";
import { jobErrors, type Job } from "./types";
import { JobStateBadge, When } from "./ui";

export const canRetry = (j: Pick<Job, "state">) => j.state === "dead" || j.state === "cancelled";
export const canCancel = (j: Pick<Job, "state">) => j.state === "pending" || j.state === "running";

export function JobButtons({ job }: { job: Job }) {
  const { t } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const may = useRoleAtLeast("operator");
  const done = (msg: string) => () => {
    toast.success(msg);
    void qc.invalidateQueries({ queryKey: keys.jobs });
  };
  const retry = useMutation({ mutationFn: () => retryJob(job.id), onSuccess: done(t("fleet.jobs.retried")), onError: toast.error });
  const cancel = useMutation({ mutationFn: () => cancelJob(job.id), onSuccess: done(t("fleet.jobs.cancelled")), onError: toast.error });
  const onCancel = async () => {
    const ok = await confirm({
      title: t("fleet.jobs.cancelTitle", { kind: job.kind }),
      body: job.state === "running" ? t("fleet.jobs.cancelRunningBody") : t("fleet.jobs.cancelBody"),
      confirmLabel: t("fleet.jobs.cancel"),
    });
    if (ok) cancel.mutate();
  };
  if (!may) return null;
  return (
    <>
      {canRetry(job) && (
        <button onClick={() => retry.mutate()} disabled={retry.isPending} data-testid="job-retry">
          {t("fleet.jobs.retry")}
        </button>
      )}
      {canCancel(job) && (
        <button className="danger" onClick={() => void onCancel()} disabled={cancel.isPending} data-testid="job-cancel">
          {t("fleet.jobs.cancel")}
        </button>
      )}
    </>
  );
}

export function JobDetail({ jobId, onClose }: { jobId: string; onClose: () => void }) {
  const { t, locale } = useI18n();
  const q = useQuery({ queryKey: keys.job(jobId), queryFn: () => getJob(jobId), refetchInterval: 5_000 });
  return (
    <SlideOver title={t("fleet.jobs.detailTitle")} onClose={onClose} testId="job-detail">
      {q.isPending ? (
        <Skeleton />
      ) : q.error ? (
        <ErrorPanel error={q.error} />
      ) : (
        <div className="stack">
          <div className="row between">
            <strong>{q.data.kind}</strong>
            <JobStateBadge state={q.data.state} />
          </div>
          <div className="row">
            <JobButtons job={q.data} />
          </div>
          <dl className="stack" style={{ gap: "0.25rem", margin: 0 }}>
            {(
              [
                [t("fleet.jobs.id"), <code key="id">{q.data.id}</code>],
                [t("fleet.jobs.priority"), t(`fleet.priority.${q.data.priority}`)],
                [t("fleet.jobs.queue"), q.data.queue],
                [t("fleet.jobs.attempts"), `${q.data.attempts} / ${q.data.max_attempts}`],
                [t("fleet.jobs.enqueued"), formatTime(q.data.enqueued_at, locale)],
                [t("fleet.jobs.runAt"), formatTime(q.data.run_at, locale)],
                [t("fleet.jobs.started"), formatTime(q.data.started_at, locale)],
                [t("fleet.jobs.finished"), formatTime(q.data.finished_at, locale)],
                [t("fleet.jobs.lease"), q.data.lease_holder ?? "—"],
                [t("fleet.jobs.concurrency"), q.data.concurrency_key ? `${q.data.concurrency_key} (${q.data.concurrency_limit ?? "—"})` : "—"],
              ] as const
            ).map(([k, v]) => (
              <div key={k} className="row between">
                <dt className="muted">{k}</dt>
                <dd style={{ margin: 0, overflowWrap: "anywhere" }}>{v}</dd>
              </div>
            ))}
          </dl>
          <section aria-labelledby="job-attempts">
            <h3 id="job-attempts">{t("fleet.jobs.attemptHistory")}</h3>
            {jobErrors(q.data).length === 0 ? (
              <p className="muted">{t("fleet.jobs.noFailures")}</p>
            ) : (
              <table data-testid="job-attempts">
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">{t("fleet.jobs.error")}</th>
                    <th scope="col">{t("fleet.jobs.worker")}</th>
                    <th scope="col">{t("fleet.jobs.at")}</th>
                  </tr>
                </thead>
                <tbody>
                  {jobErrors(q.data).map((e, i) => (
                    <tr key={`${e.attempt}-${i}`} data-testid="job-attempt-row">
                      <td>{e.attempt}</td>
                      <td style={{ overflowWrap: "anywhere" }}>{e.error}</td>
                      <td>{e.worker ?? "—"}</td>
                      <td>
                        <When iso={e.at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <section aria-labelledby="job-payload">
            <h3 id="job-payload">{t("fleet.jobs.payload")}</h3>
            <pre data-testid="job-payload">{JSON.stringify(q.data.payload, null, 2)}</pre>
          </section>
          {q.data.result !== undefined && q.data.result !== null && (
            <section aria-labelledby="job-result">
              <h3 id="job-result">{t("fleet.jobs.result")}</h3>
              <pre>{JSON.stringify(q.data.result, null, 2)}</pre>
            </section>
          )}
        </div>
      )}
    </SlideOver>
  );
}
