// The organization's schedules, read-only: what fires, when, and what it enqueued last.
import { useI18n } from "../../shared/i18n";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { keys, listSchedules, useCursorList } from "./api";
import { LoadMore, When } from "./ui";

export function Schedules() {
  const { t } = useI18n();
  const list = useCursorList(keys.schedules, listSchedules);
  return (
    <section className="stack" aria-labelledby="sched-heading" data-testid="schedules-panel">
      <h2 id="sched-heading" className="sr-only">
        {t("fleet.sched.title")}
      </h2>
      {list.isPending ? (
        <Skeleton />
      ) : list.error ? (
        <ErrorPanel error={list.error} />
      ) : list.items.length === 0 ? (
        <Empty title={t("fleet.sched.empty")} />
      ) : (
        <table data-testid="schedule-table">
          <thead>
            <tr>
              <th scope="col">{t("common.name")}</th>
              <th scope="col">{t("fleet.jobs.kind")}</th>
              <th scope="col">{t("fleet.sched.when")}</th>
              <th scope="col">{t("fleet.jobs.priority")}</th>
              <th scope="col">{t("common.status")}</th>
              <th scope="col">{t("fleet.sched.next")}</th>
              <th scope="col">{t("fleet.sched.last")}</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((s) => (
              <tr key={s.id} data-testid="schedule-row" data-schedule-id={s.id}>
                <td>{s.name}</td>
                <td>
                  <code>{s.kind}</code>
                </td>
                <td>
                  {s.cron ? (
                    <>
                      <code>{s.cron}</code> <span className="muted">UTC</span>
                    </>
                  ) : (
                    <span>
                      {t("fleet.sched.once")} <When iso={s.run_at} />
                    </span>
                  )}
                </td>
                <td>{t(`fleet.priority.${s.priority}`)}</td>
                <td>
                  <span className={`badge ${s.enabled ? "ok" : ""}`}>
                    {s.enabled ? t("fleet.sched.enabled") : t("fleet.sched.paused")}
                  </span>
                </td>
                <td>
                  <When iso={s.next_run_at} />
                </td>
                <td>
                  <When iso={s.last_run_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="schedule-load-more" />
    </section>
  );
}
