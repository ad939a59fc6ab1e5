// /h5-users: the organization's H5 end users, searched on the server (`q`, `status`) with
// cursor pages; admins create, suspend/activate and assign agents; anyone can open a user's
// live detail.
import { useRoleAtLeast } from "../auth";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useI18n } from "../../shared/i18n";
import { keys, listH5Users, setH5UserStatus, useCursorList, type H5UserFilter } from "../fleet/api";
import { AssignDialog, CreateH5UserDialog, H5UserPanel } from "../fleet/H5UserDialogs";
import { H5_USER_STATUSES, type H5User, type H5UserStatus } from "../fleet/types";
import { FilterSelect, H5StatusBadge, LoadMore, useDebounced, When } from "../fleet/ui";
import { useConfirm } from "../ui/Confirm";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";

export function H5UsersPage() {
  const { t } = useI18n();
  const isAdmin = useRoleAtLeast("admin");
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<H5UserStatus | "">("");
  const q = useDebounced(search, 300);
  const filter: H5UserFilter = { q: q.trim(), status };
  const list = useCursorList(keys.h5userList(filter), (cursor) => listH5Users(filter, cursor));
  const [creating, setCreating] = useState(false);
  const [assigning, setAssigning] = useState<H5User | null>(null);
  const [viewing, setViewing] = useState<H5User | null>(null);

  const setState = useMutation({
    mutationFn: ({ id, action }: { id: string; action: "suspend" | "activate" }) => setH5UserStatus(id, action),
    onSuccess: (u) => {
      toast.success(u.status === "suspended" ? t("fleet.h5.suspended") : t("fleet.h5.activated"));
      void qc.invalidateQueries({ queryKey: keys.h5users });
    },
    onError: toast.error,
  });
  const onSuspend = async (u: H5User) => {
    const ok = await confirm({
      title: t("fleet.h5.suspendTitle", { user: u.username }),
      body: t("fleet.h5.suspendBody"),
      confirmLabel: t("fleet.h5.suspend"),
    });
    if (ok) setState.mutate({ id: u.id, action: "suspend" });
  };

  return (
    <div className="stack">
      <div className="page-header">
        <h1>{t("fleet.h5.title")}</h1>
        <div className="spacer" />
        {isAdmin && (
          <button className="primary" onClick={() => setCreating(true)} data-testid="h5user-create-open">
            {t("fleet.h5.create")}
          </button>
        )}
      </div>
      <div className="toolbar" role="search">
        <label>
          {t("common.search")}
          <input
            type="search"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            placeholder={t("fleet.h5.searchPlaceholder")}
            data-testid="h5user-search"
          />
        </label>
        <FilterSelect
          label={t("fleet.filter.status")}
          allLabel={t("fleet.filter.allStatuses")}
          value={status}
          choices={H5_USER_STATUSES.map((s) => ({ value: s, label: t(`fleet.h5Status.${s}`) }))}
          onChange={(v) => setStatus(v as H5UserStatus | "")}
          testId="h5user-status-filter"
        />
      </div>

      {list.isPending ? (
        <Skeleton />
      ) : list.error ? (
        <ErrorPanel error={list.error} />
      ) : list.items.length === 0 ? (
        <Empty title={filter.q || filter.status ? t("fleet.noMatches") : t("fleet.h5.empty")} />
      ) : (
        <table data-testid="h5user-table">
          <thead>
            <tr>
              <th scope="col">{t("fleet.h5.username")}</th>
              <th scope="col">{t("fleet.h5.displayName")}</th>
              <th scope="col">{t("fleet.h5.contact")}</th>
              <th scope="col">{t("common.status")}</th>
              <th scope="col">{t("fleet.h5.lastLogin")}</th>
              <th scope="col">{t("common.actions")}</th>
            </tr>
          </thead>
          <tbody>
            {list.items.map((u) => (
              <tr key={u.id} data-testid="h5user-row" data-user-id={u.id} data-status={u.status}>
                <td>{u.username}</td>
                <td>{u.display_name ?? "—"}</td>
                <td>{[u.email, u.phone].filter(Boolean).join(" · ") || "—"}</td>
                <td>
                  <H5StatusBadge status={u.status} />
                </td>
                <td>
                  <When iso={u.last_login_at} />
                </td>
                <td>
                  <div className="row">
                    <button onClick={() => setViewing(u)} data-testid="h5user-view">
                      {t("fleet.h5.details")}
                    </button>
                    {isAdmin && (
                      <>
                        <button onClick={() => setAssigning(u)} data-testid="h5user-assign-open">
                          {t("fleet.h5.agents")}
                        </button>
                        {u.status === "active" ? (
                          <button
                            className="danger"
                            onClick={() => void onSuspend(u)}
                            disabled={setState.isPending}
                            data-testid="h5user-suspend"
                          >
                            {t("fleet.h5.suspend")}
                          </button>
                        ) : u.status === "suspended" ? (
                          <button
                            onClick={() => setState.mutate({ id: u.id, action: "activate" })}
                            disabled={setState.isPending}
                            data-testid="h5user-activate"
                          >
                            {t("fleet.h5.activate")}
                          </button>
                        ) : null}
                      </>
                    )}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <LoadMore hasMore={list.hasMore} loading={list.loadingMore} onClick={list.loadMore} testId="h5user-load-more" />

      {creating && <CreateH5UserDialog onClose={() => setCreating(false)} />}
      {assigning && <AssignDialog user={assigning} onClose={() => setAssigning(null)} />}
      {viewing && <H5UserPanel user={viewing} onClose={() => setViewing(null)} />}
    </div>
  );
}
