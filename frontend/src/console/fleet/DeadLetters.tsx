// Dead letters: list (by kind), replay one, replay everything matching the filter, and
// export as NDJSON.
import { useRoleAtLeast } from "../auth";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useI18n } from "../../shared/i18n";
import { useConfirm } from "../ui/Confirm";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";
import { exportDeadLetters, keys, listDeadLetters, replayDeadLetters, useCursorList } from "./api";
import { saveBlob } from "./download";
import { jobErrors, type Job } from "./types";
import { LoadMore, useDebounced, When } from "./ui";

export function DeadLetters({ onOpen }: { onOpen: (jobId: string) => void }) {
  const { t } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const may = useRoleAtLeast("operator");
  const [kindInput, setKindInput] = useState("");
  const kind = useDebounced(kindInput.trim(), 300);
  const list = useCursorList(keys.deadLetters(kind), (cursor) => listDeadLetters(kind, cursor));

  const replay = useMutation({
    mutationFn: replayDeadLetters,
    onSuccess: (n) => {
      toast.success(t("fleet.dead.replayed", { count: n }));
      void qc.invalidateQueries({ queryKey: keys.jobs });
    },
    onError: toast.error,
  });
  const onReplayOne = async (j: Job) => {
    const ok = await confirm({
      title: t("fleet.dead.replayOneTitle", { kind: j.kind }),
      body: t("fleet.dead.replayOneBody"),
      confirmLabel: t("fleet.dead.replay"),
    });
    if (ok) replay.mutate({ ids: [j.id] });
  };
  const onReplayAll = async () => {
    const ok = await confirm({
      title: kind ? t("fleet.dead.replayKindTitle", { kind }) : t("fleet.dead.replayAllTitle"),
      body: t("fleet.dead.replayAllBody"),
      confirmLabel: t("fleet.dead.replayAll"),
    });
    if (ok) replay.mutate({ kind });
  };
  const exporting = useMutation({
    mutationFn: () => exportDeadLetters(kind),
    onSuccess: (blob) => {
      saveBlob(blob, kind ? `dead-letters-${kind}.ndjson` : "dead-letters.ndjson");
      toast.success(t("fleet.dead.exported"));
    },
    onError: toast.error,
  });

  return (
    <section className="stack" aria-labelledby="dead-heading" data-testid="deadletter-panel">
      <h2 id="dead-heading" className="sr-only">
        {t("fleet.dead.title")}
      </h2>
      <div className="toolbar">
        <label>
          {t("fleet.jobs.kind")}
          <input
            value={kindInput}
            onChange={(e) => setKindInput(e.target.value)}
            placeholder={t("fleet.jobs.kindPlaceholder")}
            data-testid="deadletter-kind"
          />
        </label>
        <div className="spacer" />
        <button onClick={() => exporting.mutate()} disabled={exporting.isPending} data-testid="deadletter-export">
          {t("fleet.dead.export")}
        </button>
        {may && (
          <button
            className="danger"
            onClick={() => void onReplayAll()}
            disabled={replay.isPending || list.items.length === 0}
            data-testid="deadletter-replay-all"
          >
            {kind ? t("fleet.dead.replayKind", { kind }) : t("fleet.dead.replayAll")}
          </button>
        )}
      </div>
      {list.isPending ? (
        <Skeleton />
      ) : list.error ? (
        <ErrorPanel error={list.error} />
      ) : list.items.length === 0 ? (
        <Empty title={t("fleet.dead.empty")} />
      ) : (
        <table data-testid="deadletter-table">
          <thead>
            <tr>
              <th scope="col">{t("fleet.jobs.kind")}</th>
              <th scope="col">{t("fleet.jobs.priority")}</th>
              <th scope="col">{t("fleet.jobs.attempts")}</th>
              <th scope="col">{t("fleet.dead.lastError")}</th>
              <th scope="col">{t("fleet.jobs.finished")}</th>
              <th scope="col">{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((j) => {
              const errs = jobErrors(j);
              const last = errs[errs.length - 1];
              return (
                <tr key={j.id} data-testid="deadletter-row" data-job-id={j.id}>
                  <td>
                    <code>{j.kind}</code>
                  </td>
                  <td>{t(`fleet.priority.${j.priority}`)}</td>
                  <td>
                    {j.attempts} / {j.max_attempts}
                  </td>
                  <td style={{ maxWidth: 360, overflowWrap: "anywhere" }}>{last?.error ?? "—"}</td>
                  <td>
                    <When iso={j.finished_at} />
                  </td>
                  <td>
                    <div className="row">
                      <button onClick={() => onOpen(j.id)} data-testid="deadletter-open">
                        {t("fleet.jobs.details")}
                      </button>
                      {may && (
                        <button
                          onClick={() => void onReplayOne(j)}
                          disabled={replay.isPending}
                          data-testid="deadletter-replay"
                        >
                          {t("fleet.dead.replay")}
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="deadletter-load-more" />
    </section>
  );
}
