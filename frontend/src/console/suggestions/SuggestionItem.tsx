// One suggestion with Accept and Dismiss (optional reason), used by the bell's panel and
// the board strip. A 409 means someone else already resolved it: say so and refresh.
import { useMutation, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { ApiError } from "../../shared/api/errors";
import { useI18n } from "../../shared/i18n";
import { api, queryClient, unwrap } from "../api";
import { useCanWrite } from "../auth";
import { Modal } from "../ui/Modal";
import { useToast } from "../ui/Toasts";
import { formatRelative, formatTime } from "../ui/format";
import { fetchBoardNames, fetchRuleNames, keys, type Suggestion } from "./data";

const PRIORITY_CLASS: Record<string, string> = { critical: "danger", high: "warn", medium: "", low: "" };

/** Accept / dismiss with the toasts and the 409 handling both views share. */
export function useSuggestionActions() {
  const { t } = useI18n();
  const toast = useToast();
  const refresh = () => queryClient.invalidateQueries({ queryKey: keys.suggestions });
  const onError = (err: unknown) => {
    if (err instanceof ApiError && err.status === 409) toast.info(t("suggestions.alreadyResolved"));
    else toast.error(err);
    void refresh();
  };
  const accept = useMutation({
    mutationFn: async (id: string) =>
      unwrap(await api.POST("/api/v1/suggestions/{id}/accept", { params: { path: { id } } })),
    onSuccess: (out) => {
      toast.success(out.suggestion.status === "executed" ? t("suggestions.executed") : t("suggestions.accepted"));
      void refresh();
    },
    onError,
  });
  const dismiss = useMutation({
    mutationFn: async ({ id, reason }: { id: string; reason: string }) =>
      unwrap(
        await api.POST("/api/v1/suggestions/{id}/dismiss", {
          params: { path: { id } },
          body: reason.trim() ? { reason: reason.trim() } : {},
        }),
      ),
    onSuccess: () => {
      toast.success(t("suggestions.dismissed"));
      void refresh();
    },
    onError,
  });
  return { accept, dismiss };
}

/** Board and rule names to label suggestions with. */
export function useNames() {
  const boards = useQuery({ queryKey: keys.boardNames, queryFn: fetchBoardNames, staleTime: 60_000 });
  const rules = useQuery({ queryKey: keys.ruleNames, queryFn: fetchRuleNames, staleTime: 60_000 });
  return { boards: boards.data, rules: rules.data };
}

function DismissDialog({
  title,
  busy,
  onCancel,
  onConfirm,
}: {
  title: string;
  busy: boolean;
  onCancel: () => void;
  onConfirm: (reason: string) => void;
}) {
  const { t } = useI18n();
  const [reason, setReason] = useState("");
  return (
    <Modal title={t("suggestions.dismissTitle")} onClose={onCancel}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm(reason);
        }}
      >
        <p>{title}</p>
        <label>
          {t("suggestions.dismissReason")}
          <textarea
            value={reason}
            maxLength={2000}
            onChange={(e) => setReason(e.target.value)}
            data-testid="suggestion-dismiss-reason"
            autoFocus
          />
        </label>
        <div className="row end">
          <button type="button" onClick={onCancel} data-testid="confirm-cancel">
            {t("common.cancel")}
          </button>
          <button type="submit" className="danger" disabled={busy} data-testid="confirm-ok">
            {t("suggestions.dismiss")}
          </button>
        </div>
      </form>
    </Modal>
  );
}

export function SuggestionItem({ s, compact = false }: { s: Suggestion; compact?: boolean }) {
  const { t, locale } = useI18n();
  const canWrite = useCanWrite();
  const { accept, dismiss } = useSuggestionActions();
  const { boards, rules } = useNames();
  const [asking, setAsking] = useState(false);
  const busy = (accept.isPending && accept.variables === s.id) || (dismiss.isPending && dismiss.variables?.id === s.id);
  const pending = s.status === "pending";
  const boardName = s.board_id ? (boards?.get(s.board_id) ?? s.board_id.slice(0, 8)) : null;
  const source = s.rule_id
    ? t("suggestions.byRule", { rule: rules?.get(s.rule_id) ?? s.rule_id.slice(0, 8) })
    : t("suggestions.byMaker", { maker: s.created_by_type });
  return (
    <li
      className={`suggestion-item${compact ? " compact" : ""}`}
      data-testid="suggestion-item"
      data-suggestion-id={s.id}
      data-status={s.status}
    >
      <div className="row between">
        <strong className="suggestion-title">{s.title}</strong>
        <span className={`badge ${PRIORITY_CLASS[s.priority] ?? ""}`}>{t(`insight.priority.${s.priority}`)}</span>
      </div>
      {s.description && <p className="suggestion-desc">{s.description}</p>}
      <div className="row suggestion-meta muted">
        <span className="badge">{t(`suggestion.type.${s.suggestion_type}`)}</span>
        {!compact && boardName && s.board_id && (
          <Link to={`/boards/${s.board_id}`}>{t("suggestions.board", { board: boardName })}</Link>
        )}
        <span title={formatTime(s.created_at, locale)}>{formatRelative(s.created_at, locale)}</span>
        {!compact && <span>{source}</span>}
        {!pending && <span className="badge">{t(`suggestion.status.${s.status}`)}</span>}
      </div>
      {!pending && s.resolution_reason && (
        <p className="muted">{t("suggestions.reason", { reason: s.resolution_reason })}</p>
      )}
      {pending && canWrite && (
        <div className="row">
          <button
            className="primary"
            disabled={busy}
            onClick={() => accept.mutate(s.id)}
            data-testid="suggestion-accept"
            aria-label={t("suggestions.acceptLabel", { title: s.title })}
          >
            {t("suggestions.accept")}
          </button>
          <button
            disabled={busy}
            onClick={() => setAsking(true)}
            data-testid="suggestion-dismiss"
            aria-label={t("suggestions.dismissLabel", { title: s.title })}
          >
            {t("suggestions.dismiss")}
          </button>
        </div>
      )}
      {asking && (
        <DismissDialog
          title={s.title}
          busy={busy}
          onCancel={() => setAsking(false)}
          onConfirm={(reason) => {
            setAsking(false);
            dismiss.mutate({ id: s.id, reason });
          }}
        />
      )}
    </li>
  );
}
