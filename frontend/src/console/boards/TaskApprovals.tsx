// Approvals that cover this task: list, request one, approve or reject (a reason is
// required to reject). The API lists approvals per board; we keep those naming this task.
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import type { Schema } from "../../shared/api/client";
import { useI18n } from "../../shared/i18n";
import type { Task } from "../../shared/protocol/boardSync";
import { api, unwrap } from "../api";
import { formatRelative } from "../ui/format";
import { Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";
import type { BoardPerms } from "./perms";

type Approval = Schema<"Approval">;
const STATUS_CLASS: Record<string, string> = { pending: "warn", approved: "ok", rejected: "danger" };

export function TaskApprovals({ task, perms }: { task: Task; perms: BoardPerms }) {
  const { t, locale } = useI18n();
  const toast = useToast();
  const qc = useQueryClient();
  const id = useId();
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [busy, setBusy] = useState(false);
  const key = ["approvals", "board", task.board_id];

  const approvals = useInfiniteQuery({
    queryKey: key,
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) =>
      unwrap(
        await api.GET("/api/v1/approvals", {
          params: { query: { board_id: task.board_id, limit: 100, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const mine = (approvals.data?.pages.flatMap((p) => p.items) ?? []).filter((a) => a.task_ids.includes(task.id));

  const request = async () => {
    setBusy(true);
    try {
      unwrap(
        await api.POST("/api/v1/approvals", {
          body: {
            board_id: task.board_id,
            title: title.trim(),
            task_ids: [task.id],
            ...(description.trim() ? { description: description.trim() } : {}),
          },
        }),
      );
      setTitle("");
      setDescription("");
      toast.success(t("task.approvals.requested"));
      await qc.invalidateQueries({ queryKey: key });
    } catch (err) {
      toast.error(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="task-section" aria-labelledby={`${id}-h`} data-testid="task-approvals">
      <h3 id={`${id}-h`}>{t("task.approvals.title")}</h3>
      {approvals.isPending ? (
        <Skeleton rows={1} />
      ) : approvals.isError ? (
        <p className="error-panel" role="alert">
          {t("task.approvals.loadFailed")}
        </p>
      ) : mine.length === 0 ? (
        <p className="muted">{t("task.approvals.none")}</p>
      ) : (
        <ul className="plain-list">
          {mine.map((a) => (
            <ApprovalItem key={a.id} approval={a} canResolve={perms.resolveApprovals} locale={locale} onResolved={() => qc.invalidateQueries({ queryKey: key })} />
          ))}
        </ul>
      )}
      {approvals.hasNextPage && (
        <button onClick={() => void approvals.fetchNextPage()} disabled={approvals.isFetchingNextPage} data-testid="task-approvals-more">
          {t("common.loadMore")}
        </button>
      )}
      {perms.requestApprovals && (
        <form
          className="stack approval-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (title.trim()) void request();
          }}
        >
          <label htmlFor={`${id}-t`}>
            {t("task.approvals.requestTitle")}
            <input id={`${id}-t`} value={title} maxLength={500} onChange={(e) => setTitle(e.target.value)} data-testid="approval-title-input" />
          </label>
          <label htmlFor={`${id}-d`}>
            {t("task.approvals.requestDescription")}
            <textarea id={`${id}-d`} value={description} onChange={(e) => setDescription(e.target.value)} data-testid="approval-description-input" />
          </label>
          <div className="row end">
            <button type="submit" disabled={!title.trim() || busy} data-testid="approval-request">
              {t("task.approvals.request")}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

function ApprovalItem({
  approval,
  canResolve,
  locale,
  onResolved,
}: {
  approval: Approval;
  canResolve: boolean;
  locale: string;
  onResolved: () => Promise<unknown>;
}) {
  const { t } = useI18n();
  const toast = useToast();
  const id = useId();
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);

  const resolve = async (verdict: "approve" | "reject") => {
    if (verdict === "reject" && !reason.trim()) {
      toast.error(new Error(t("task.approvals.reasonRequired")));
      return;
    }
    setBusy(true);
    try {
      const opts = { params: { path: { id: approval.id } }, body: reason.trim() ? { reason: reason.trim() } : {} };
      unwrap(
        verdict === "approve"
          ? await api.POST("/api/v1/approvals/{id}/approve", opts)
          : await api.POST("/api/v1/approvals/{id}/reject", opts),
      );
      toast.success(verdict === "approve" ? t("task.approvals.approved") : t("task.approvals.rejected"));
      setReason("");
      await onResolved();
    } catch (err) {
      toast.error(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <li className="approval" data-testid="task-approval" data-approval-id={approval.id} data-approval-status={approval.status}>
      <div className="row">
        <span className={`badge ${STATUS_CLASS[approval.status] ?? ""}`}>{t(`task.approvals.status.${approval.status}`)}</span>
        <strong>{approval.title}</strong>
        <span className="muted">
          {t("task.approvals.by", { name: approval.requested_by.name, when: formatRelative(approval.created_at, locale) })}
        </span>
      </div>
      {approval.description && <p className="comment-body">{approval.description}</p>}
      {approval.resolution_reason && (
        <p className="muted">
          {t("task.approvals.reason")}: {approval.resolution_reason}
          {approval.resolved_by && ` — ${approval.resolved_by.name}`}
        </p>
      )}
      {canResolve && approval.status === "pending" && (
        <div className="row">
          <label htmlFor={id} className="sr-only">
            {t("task.approvals.reason")}
          </label>
          <input
            id={id}
            value={reason}
            placeholder={t("task.approvals.reasonPlaceholder")}
            onChange={(e) => setReason(e.target.value)}
            data-testid="approval-reason-input"
          />
          <button className="primary" disabled={busy} onClick={() => void resolve("approve")} data-testid="approval-approve">
            {t("task.approvals.approve")}
          </button>
          <button className="danger" disabled={busy} onClick={() => void resolve("reject")} data-testid="approval-reject">
            {t("task.approvals.reject")}
          </button>
        </div>
      )}
    </li>
  );
}
