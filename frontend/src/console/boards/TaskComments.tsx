// A task's comments, oldest first as the API returns them, with "load more" and a box
// to add one.
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState } from "react";
import { useI18n } from "../../shared/i18n";
import { api, unwrap } from "../api";
import { formatRelative, formatTime } from "../ui/format";
import { Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";

export function TaskComments({ taskId, canComment }: { taskId: string; canComment: boolean }) {
  const { t, locale } = useI18n();
  const toast = useToast();
  const qc = useQueryClient();
  const id = useId();
  const [body, setBody] = useState("");
  const [busy, setBusy] = useState(false);
  const key = ["task-comments", taskId];

  const comments = useInfiniteQuery({
    queryKey: key,
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) =>
      unwrap(
        await api.GET("/api/v1/tasks/{id}/comments", {
          params: { path: { id: taskId }, query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });

  const add = async () => {
    setBusy(true);
    try {
      unwrap(await api.POST("/api/v1/tasks/{id}/comments", { params: { path: { id: taskId } }, body: { body: body.trim() } }));
      setBody("");
      toast.success(t("task.comments.added"));
      await qc.invalidateQueries({ queryKey: key });
    } catch (err) {
      toast.error(err);
    } finally {
      setBusy(false);
    }
  };

  const items = comments.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section className="task-section" aria-labelledby={`${id}-h`} data-testid="task-comments">
      <h3 id={`${id}-h`}>{t("task.comments.title")}</h3>
      {comments.isPending ? (
        <Skeleton rows={2} />
      ) : comments.isError ? (
        <p className="error-panel" role="alert">
          {t("task.comments.loadFailed")}
        </p>
      ) : items.length === 0 ? (
        <p className="muted">{t("task.comments.none")}</p>
      ) : (
        <ul className="plain-list comments">
          {items.map((c) => (
            <li key={c.id} data-testid="task-comment">
              <div className="row">
                <strong>{c.author.name}</strong>
                <time className="muted" dateTime={c.created_at} title={formatTime(c.created_at, locale)}>
                  {formatRelative(c.created_at, locale)}
                </time>
              </div>
              <p className="comment-body">{c.body}</p>
            </li>
          ))}
        </ul>
      )}
      {comments.hasNextPage && (
        <button onClick={() => void comments.fetchNextPage()} disabled={comments.isFetchingNextPage} data-testid="task-comments-more">
          {t("common.loadMore")}
        </button>
      )}
      {canComment && (
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            if (body.trim()) void add();
          }}
        >
          <label htmlFor={`${id}-c`}>
            {t("task.comments.add")}
            <textarea id={`${id}-c`} value={body} maxLength={10000} onChange={(e) => setBody(e.target.value)} data-testid="comment-input" />
          </label>
          <div className="row end">
            <button type="submit" className="primary" disabled={!body.trim() || busy} data-testid="comment-submit">
              {t("task.comments.submit")}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
