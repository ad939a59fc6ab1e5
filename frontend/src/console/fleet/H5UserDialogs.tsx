// H5 user dialogs: create a user, manage a user's agent assignments, and the detail panel
// (assignments, open sockets, chat sessions).
import { useRoleAtLeast } from "../auth";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useI18n } from "../../shared/i18n";
import { useConfirm } from "../ui/Confirm";
import { Modal, SlideOver } from "../ui/Modal";
import { Empty, ErrorPanel, Skeleton } from "../ui/States";
import { useToast } from "../ui/Toasts";
import { allAgents, allBoards, assignAgent, createH5User, getH5User, keys, unassignAgent, type H5UserInput } from "./api";
import type { Assignment, H5User } from "./types";
import { H5StatusBadge, When } from "./ui";

const LIVE_REFRESH_MS = 5_000;

export function CreateH5UserDialog({ onClose }: { onClose: () => void }) {
  const { t } = useI18n();
  const toast = useToast();
  const qc = useQueryClient();
  const [form, setForm] = useState<H5UserInput>({ username: "", password: "", display_name: "", email: "", phone: "" });
  const set = (k: keyof H5UserInput) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  const create = useMutation({
    // Optional fields are omitted when blank: the API validates any value it is given.
    mutationFn: () =>
      createH5User({
        username: form.username.trim(),
        password: form.password,
        display_name: form.display_name?.trim() || null,
        email: form.email?.trim() || null,
        phone: form.phone?.trim() || null,
      }),
    onSuccess: () => {
      toast.success(t("fleet.h5.created"));
      void qc.invalidateQueries({ queryKey: keys.h5users });
      onClose();
    },
    onError: toast.error,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Modal title={t("fleet.h5.create")} onClose={onClose}>
      <form onSubmit={submit} data-testid="h5user-create-form">
        <label>
          {t("fleet.h5.username")}
          <input value={form.username} onChange={set("username")} required autoFocus autoComplete="off" data-testid="h5user-username" />
        </label>
        <label>
          {t("fleet.h5.password")}
          <input
            type="password"
            value={form.password}
            onChange={set("password")}
            required
            minLength={8}
            autoComplete="new-password"
            data-testid="h5user-password"
          />
        </label>
        <label>
          {t("fleet.h5.displayName")}
          <input value={form.display_name ?? ""} onChange={set("display_name")} data-testid="h5user-display-name" />
        </label>
        <label>
          {t("fleet.h5.email")}
          <input type="email" value={form.email ?? ""} onChange={set("email")} data-testid="h5user-email" />
        </label>
        <label>
          {t("fleet.h5.phone")}
          <input type="tel" value={form.phone ?? ""} onChange={set("phone")} data-testid="h5user-phone" />
        </label>
        <div className="row end">
          <button type="button" onClick={onClose} data-testid="h5user-create-cancel">
            {t("common.cancel")}
          </button>
          <button
            type="submit"
            className="primary"
            disabled={create.isPending || !form.username.trim() || !form.password}
            data-testid="h5user-create-submit"
          >
            {t("common.create")}
          </button>
        </div>
      </form>
    </Modal>
  );
}

/** One user's assignments with remove buttons (admins) — shared by the dialog and the panel. */
function AssignmentList({ user, assignments }: { user: H5User; assignments: Assignment[] }) {
  const { t } = useI18n();
  const toast = useToast();
  const confirm = useConfirm();
  const qc = useQueryClient();
  const isAdmin = useRoleAtLeast("admin");
  const remove = useMutation({
    mutationFn: (agentId: string) => unassignAgent(user.id, agentId),
    onSuccess: () => {
      toast.success(t("fleet.h5.unassigned"));
      void qc.invalidateQueries({ queryKey: keys.h5user(user.id) });
    },
    onError: toast.error,
  });
  const onRemove = async (a: Assignment) => {
    const ok = await confirm({
      title: t("fleet.h5.unassignTitle", { agent: a.agent_name }),
      body: t("fleet.h5.unassignBody", { user: user.username }),
      confirmLabel: t("fleet.h5.unassign"),
    });
    if (ok) remove.mutate(a.agent_id);
  };
  if (assignments.length === 0) return <Empty title={t("fleet.h5.noAssignments")} />;
  return (
    <table data-testid="h5user-assignments">
      <thead>
        <tr>
          <th scope="col">{t("fleet.live.agent")}</th>
          <th scope="col">{t("fleet.agents.board")}</th>
          <th scope="col">{t("fleet.h5.role")}</th>
          <th scope="col">{t("fleet.h5.assignedAt")}</th>
          {isAdmin && <th scope="col">{t("common.actions")}</th>}
        </tr>
      </thead>
      <tbody>
        {assignments.map((a) => (
          <tr key={a.id} data-testid="h5user-assignment-row" data-agent-id={a.agent_id}>
            <td>{a.agent_name}</td>
            <td>{a.board_name}</td>
            <td>{a.role}</td>
            <td>
              <When iso={a.assigned_at} />
            </td>
            {isAdmin && (
              <td>
                <button
                  className="danger"
                  onClick={() => void onRemove(a)}
                  disabled={remove.isPending}
                  data-testid="h5user-unassign"
                >
                  {t("fleet.h5.unassign")}
                </button>
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function AssignDialog({ user, onClose }: { user: H5User; onClose: () => void }) {
  const { t } = useI18n();
  const toast = useToast();
  const qc = useQueryClient();
  const detail = useQuery({ queryKey: keys.h5user(user.id), queryFn: () => getH5User(user.id) });
  const agents = useQuery({ queryKey: keys.allAgents, queryFn: () => allAgents(), staleTime: 30_000 });
  const boards = useQuery({ queryKey: keys.boards, queryFn: allBoards, staleTime: 60_000 });
  const [agentId, setAgentId] = useState("");
  const [boardId, setBoardId] = useState("");
  const assigned = new Set(detail.data?.assignments.map((a) => a.agent_id));
  const choices = (agents.data ?? []).filter((a) => !assigned.has(a.id));

  const pickAgent = (id: string) => {
    setAgentId(id);
    // The conversation belongs to a board; the agent's own board is the natural default.
    const board = agents.data?.find((a) => a.id === id)?.board_id;
    if (board) setBoardId(board);
  };
  const assign = useMutation({
    mutationFn: () => assignAgent(user.id, agentId, boardId),
    onSuccess: () => {
      toast.success(t("fleet.h5.assigned"));
      setAgentId("");
      void qc.invalidateQueries({ queryKey: keys.h5user(user.id) });
    },
    onError: toast.error,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (agentId && boardId) assign.mutate();
  };
  return (
    <Modal title={t("fleet.h5.assignTitle", { user: user.username })} onClose={onClose}>
      <div className="stack" data-testid="h5user-assign-dialog">
        <h3>{t("fleet.h5.assignments")}</h3>
        {detail.isPending ? (
          <Skeleton rows={2} />
        ) : detail.error ? (
          <ErrorPanel error={detail.error} />
        ) : (
          <AssignmentList user={user} assignments={detail.data.assignments} />
        )}
        <form onSubmit={submit} className="stack">
          <h3>{t("fleet.h5.assignNew")}</h3>
          {agents.error && <ErrorPanel error={agents.error} />}
          <label>
            {t("fleet.live.agent")}
            <select
              value={agentId}
              onChange={(e) => pickAgent(e.target.value)}
              disabled={agents.isPending}
              required
              data-testid="h5user-assign-select"
            >
              <option value="">{agents.isPending ? t("fleet.loading") : t("fleet.h5.pickAgent")}</option>
              {choices.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name} ({t(`fleet.agentStatus.${a.status}`)})
                </option>
              ))}
            </select>
          </label>
          <label>
            {t("fleet.agents.board")}
            <select
              value={boardId}
              onChange={(e) => setBoardId(e.target.value)}
              required
              data-testid="h5user-assign-board"
            >
              <option value="">{t("fleet.h5.pickBoard")}</option>
              {(boards.data ?? []).map((b) => (
                <option key={b.id} value={b.id}>
                  {b.name}
                </option>
              ))}
            </select>
          </label>
          <div className="row end">
            <button type="button" onClick={onClose} data-testid="h5user-assign-close">
              {t("common.close")}
            </button>
            <button
              type="submit"
              className="primary"
              disabled={!agentId || !boardId || assign.isPending}
              data-testid="h5user-assign-submit"
            >
              {t("fleet.h5.assign")}
            </button>
          </div>
        </form>
      </div>
    </Modal>
  );
}

export function H5UserPanel({ user, onClose }: { user: H5User; onClose: () => void }) {
  const { t } = useI18n();
  const q = useQuery({
    queryKey: keys.h5user(user.id),
    queryFn: () => getH5User(user.id),
    refetchInterval: LIVE_REFRESH_MS,
  });
  return (
    <SlideOver title={user.display_name || user.username} onClose={onClose} testId="h5user-panel">
      {q.isPending ? (
        <Skeleton />
      ) : q.error ? (
        <ErrorPanel error={q.error} />
      ) : (
        <div className="stack">
          <dl className="stack" style={{ gap: "0.25rem", margin: 0 }}>
            <div className="row between">
              <dt className="muted">{t("fleet.h5.username")}</dt>
              <dd style={{ margin: 0 }}>{q.data.user.username}</dd>
            </div>
            <div className="row between">
              <dt className="muted">{t("common.status")}</dt>
              <dd style={{ margin: 0 }}>
                <H5StatusBadge status={q.data.user.status} />
              </dd>
            </div>
            <div className="row between">
              <dt className="muted">{t("fleet.h5.contact")}</dt>
              <dd style={{ margin: 0 }}>{[q.data.user.email, q.data.user.phone].filter(Boolean).join(" · ") || "—"}</dd>
            </div>
            <div className="row between">
              <dt className="muted">{t("fleet.h5.lastLogin")}</dt>
              <dd style={{ margin: 0 }}>
                <When iso={q.data.user.last_login_at} />
              </dd>
            </div>
          </dl>

          <section aria-labelledby="h5-presence">
            <h3 id="h5-presence">{t("fleet.h5.presence")}</h3>
            <p data-testid="h5user-presence" data-connections={q.data.live.connections}>
              {q.data.live.connections > 0 ? (
                <span className="badge ok">{t("fleet.h5.online", { count: q.data.live.connections })}</span>
              ) : (
                <span className="badge">{t("fleet.h5.offline")}</span>
              )}
            </p>
            {Object.entries(q.data.live.instances).length > 0 && (
              <ul>
                {Object.entries(q.data.live.instances).map(([inst, n]) => (
                  <li key={inst}>
                    <code>{inst}</code>: {n}
                  </li>
                ))}
              </ul>
            )}
          </section>

          <section aria-labelledby="h5-assignments">
            <h3 id="h5-assignments">{t("fleet.h5.assignments")}</h3>
            <AssignmentList user={user} assignments={q.data.assignments} />
          </section>

          <section aria-labelledby="h5-sessions">
            <h3 id="h5-sessions">{t("fleet.live.sessions")}</h3>
            {q.data.sessions.length === 0 ? (
              <Empty title={t("fleet.live.noSessions")} />
            ) : (
              <table data-testid="h5user-sessions">
                <thead>
                  <tr>
                    <th scope="col">{t("fleet.live.agent")}</th>
                    <th scope="col">{t("common.status")}</th>
                    <th scope="col">{t("fleet.live.messages")}</th>
                    <th scope="col">{t("fleet.live.lastMessage")}</th>
                  </tr>
                </thead>
                <tbody>
                  {q.data.sessions.map((s) => (
                    <tr key={s.id} data-testid="h5user-session-row">
                      <td>{s.agent_name}</td>
                      <td>
                        <span className={`badge ${s.status === "active" ? "ok" : ""}`}>{s.status}</span>
                      </td>
                      <td>{s.last_seq}</td>
                      <td>
                        <When iso={s.last_message_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </div>
      )}
    </SlideOver>
  );
}
