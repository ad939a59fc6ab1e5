// /rules: the organization's proactive rules (the six builtin ones are marked and can only
// be switched on or off or given another cooldown), with create, edit, toggle and delete.
import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import { useState } from "react";
import { useI18n } from "../../shared/i18n";
import { api, queryClient, unwrap } from "../api";
import { useCanWrite } from "../auth";
import { RuleForm } from "../rules/RuleForm";
import { keys, type Rule } from "../suggestions/data";
import { useConfirm } from "../ui/Confirm";
import { SlideOver } from "../ui/Modal";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";
import { formatRelative, formatTime } from "../ui/format";
import "../suggestions/insight.css";

type Editing = { rule: Rule | null } | null;

interface Filters {
  is_enabled?: boolean;
  is_builtin?: boolean;
}

function boolParam(v: string): boolean | undefined {
  return v === "" ? undefined : v === "true";
}

export function RulesPage() {
  const { t } = useI18n();
  const canWrite = useCanWrite();
  const [editing, setEditing] = useState<Editing>(null);
  const [filters, setFilters] = useState<Filters>({});
  const q = { ...filters, limit: 50 };
  const list = useInfiniteQuery({
    queryKey: keys.ruleList(q),
    queryFn: async ({ pageParam }) =>
      unwrap(await api.GET("/api/v1/proactive-rules", { params: { query: { ...q, cursor: pageParam } } })),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const rules = list.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <section aria-labelledby="rules-title">
      <div className="page-header">
        <h1 id="rules-title">{t("rules.title")}</h1>
        <div className="spacer" />
        {canWrite && (
          <button className="primary" onClick={() => setEditing({ rule: null })} data-testid="rule-create-open">
            {t("rules.create")}
          </button>
        )}
      </div>
      <p className="muted">{t("rules.intro")}</p>
      <div className="toolbar">
        <label>
          {t("rules.filterEnabled")}
          <select
            value={filters.is_enabled === undefined ? "" : String(filters.is_enabled)}
            onChange={(e) => setFilters((f) => ({ ...f, is_enabled: boolParam(e.target.value) }))}
            data-testid="rule-filter-enabled"
          >
            <option value="">{t("rules.any")}</option>
            <option value="true">{t("rules.enabledOnly")}</option>
            <option value="false">{t("rules.disabledOnly")}</option>
          </select>
        </label>
        <label>
          {t("rules.filterBuiltin")}
          <select
            value={filters.is_builtin === undefined ? "" : String(filters.is_builtin)}
            onChange={(e) => setFilters((f) => ({ ...f, is_builtin: boolParam(e.target.value) }))}
            data-testid="rule-filter-builtin"
          >
            <option value="">{t("rules.any")}</option>
            <option value="true">{t("rules.builtinOnly")}</option>
            <option value="false">{t("rules.customOnly")}</option>
          </select>
        </label>
      </div>
      {list.isPending ? (
        <Skeleton rows={6} />
      ) : list.isError ? (
        <ErrorPanel error={list.error} />
      ) : rules.length === 0 ? (
        <Empty title={t("rules.empty")} />
      ) : (
        <table data-testid="rule-table">
          <thead>
            <tr>
              <th scope="col">{t("common.name")}</th>
              <th scope="col">{t("rules.trigger")}</th>
              <th scope="col">{t("rules.action")}</th>
              <th scope="col">{t("rules.cooldown")}</th>
              <th scope="col">{t("rules.lastFired")}</th>
              <th scope="col">{t("rules.enabled")}</th>
              <th scope="col">{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {rules.map((r) => (
              <RuleRow key={r.id} rule={r} canWrite={canWrite} onEdit={() => setEditing({ rule: r })} />
            ))}
          </tbody>
        </table>
      )}
      {list.hasNextPage && (
        <button onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage} data-testid="rule-load-more">
          {t("common.loadMore")}
        </button>
      )}
      {editing && (
        <SlideOver
          title={editing.rule ? t("rules.editNamed", { name: editing.rule.name }) : t("rules.create")}
          onClose={() => setEditing(null)}
          testId="rule-panel"
        >
          <RuleForm rule={editing.rule} onDone={() => setEditing(null)} />
        </SlideOver>
      )}
    </section>
  );
}

function RuleRow({ rule, canWrite, onEdit }: { rule: Rule; canWrite: boolean; onEdit: () => void }) {
  const { t, locale } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const refresh = () => queryClient.invalidateQueries({ queryKey: keys.rules });
  const toggle = useMutation({
    mutationFn: async () =>
      unwrap(await api.POST("/api/v1/proactive-rules/{id}/toggle", { params: { path: { id: rule.id } } })),
    onSuccess: (res) => {
      toast.success(res.is_enabled ? t("rules.nowEnabled", { name: rule.name }) : t("rules.nowDisabled", { name: rule.name }));
      void refresh();
    },
    onError: (e) => {
      toast.error(e);
      void refresh();
    },
  });
  const remove = useMutation({
    mutationFn: async () => {
      const res = await api.DELETE("/api/v1/proactive-rules/{id}", { params: { path: { id: rule.id } } });
      unwrap(res);
    },
    onSuccess: () => {
      toast.success(t("common.deleted"));
      void refresh();
    },
    onError: (e) => toast.error(e),
  });
  const askDelete = async () => {
    const ok = await confirm({
      title: t("rules.deleteTitle"),
      body: t("rules.deleteBody", { name: rule.name }),
      confirmLabel: t("common.delete"),
    });
    if (ok) remove.mutate();
  };
  return (
    <tr data-testid="rule-row" data-rule-id={rule.id} data-builtin={String(rule.is_builtin)} data-enabled={String(rule.is_enabled)}>
      <td>
        <div className="row">
          <strong>{rule.name}</strong>
          {rule.is_builtin && (
            <span className="badge" data-testid="rule-builtin">
              {t("rules.builtin")}
            </span>
          )}
        </div>
        {rule.description && <div className="muted">{rule.description}</div>}
      </td>
      <td>
        <code>{rule.trigger_event}</code>
      </td>
      <td>{t(`rules.action.${rule.action_type}`)}</td>
      <td>{t("rules.seconds", { n: rule.cooldown_seconds })}</td>
      <td title={formatTime(rule.last_fired_at, locale)}>
        {rule.last_fired_at ? formatRelative(rule.last_fired_at, locale) : t("rules.never")}
      </td>
      <td>
        <button
          role="switch"
          aria-checked={rule.is_enabled}
          aria-label={t("rules.toggleLabel", { name: rule.name })}
          className={rule.is_enabled ? "primary" : ""}
          disabled={!canWrite || toggle.isPending}
          onClick={() => toggle.mutate()}
          data-testid="rule-toggle"
        >
          {rule.is_enabled ? t("rules.on") : t("rules.off")}
        </button>
      </td>
      <td>
        <div className="row">
          <button onClick={onEdit} data-testid="rule-edit">
            {canWrite ? t("common.edit") : t("rules.view")}
          </button>
          {canWrite && !rule.is_builtin && (
            <button className="danger" onClick={() => void askDelete()} disabled={remove.isPending} data-testid="rule-delete">
              {t("common.delete")}
            </button>
          )}
        </div>
      </td>
    </tr>
  );
}
