// The "new board" dialog: name, description, objective, expected agents, group and the
// done rules.
import { useId, useState } from "react";
import type { Schema } from "../../shared/api/client";
import { useI18n } from "../../shared/i18n";
import { api, unwrap } from "../api";
import { Modal } from "../ui/Modal";
import { useToast } from "../ui/Toasts";

type Board = Schema<"Board">;
type BoardGroup = Schema<"BoardGroup">;

interface Props {
  groups: BoardGroup[];
  defaultGroupId?: string;
  onClose: () => void;
  onCreated: (board: Board) => void;
}

export function CreateBoardModal({ groups, defaultGroupId, onClose, onCreated }: Props) {
  const { t } = useI18n();
  const toast = useToast();
  const id = useId();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [objective, setObjective] = useState("");
  const [maxAgents, setMaxAgents] = useState("5");
  const [groupId, setGroupId] = useState(defaultGroupId ?? "");
  const [approval, setApproval] = useState(false);
  const [evidence, setEvidence] = useState(false);
  const [busy, setBusy] = useState(false);
  const max = Number(maxAgents);
  const valid = name.trim().length > 0 && Number.isInteger(max) && max >= 1;

  const submit = async () => {
    setBusy(true);
    try {
      const board = unwrap(
        await api.POST("/api/v1/boards", {
          body: {
            name: name.trim(),
            max_agents: max,
            // Unticked leaves the organization's default in place.
            ...(approval ? { require_approval_for_done: true } : {}),
            require_evidence_for_done: evidence,
            ...(description.trim() ? { description: description.trim() } : {}),
            ...(objective.trim() ? { objective: objective.trim() } : {}),
            ...(groupId ? { board_group_id: groupId } : {}),
          },
        }),
      );
      toast.success(t("boards.created", { name: board.name }));
      onCreated(board);
    } catch (err) {
      toast.error(err);
      setBusy(false);
    }
  };

  return (
    <Modal title={t("boards.create.title")} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (valid && !busy) void submit();
        }}
      >
        <label htmlFor={`${id}-name`}>
          {t("common.name")}
          <input
            id={`${id}-name`}
            value={name}
            required
            maxLength={128}
            autoFocus
            onChange={(e) => setName(e.target.value)}
            data-testid="board-create-name"
          />
        </label>
        <label htmlFor={`${id}-desc`}>
          {t("boards.description")}
          <textarea id={`${id}-desc`} value={description} onChange={(e) => setDescription(e.target.value)} data-testid="board-create-description" />
        </label>
        <label htmlFor={`${id}-obj`}>
          {t("boards.objective")}
          <textarea id={`${id}-obj`} value={objective} onChange={(e) => setObjective(e.target.value)} data-testid="board-create-objective" />
        </label>
        <div className="row">
          <label htmlFor={`${id}-max`}>
            {t("boards.maxAgents")}
            <input
              id={`${id}-max`}
              type="number"
              min={1}
              step={1}
              value={maxAgents}
              onChange={(e) => setMaxAgents(e.target.value)}
              data-testid="board-create-max-agents"
            />
          </label>
          <label htmlFor={`${id}-group`}>
            {t("boards.group")}
            <select id={`${id}-group`} value={groupId} onChange={(e) => setGroupId(e.target.value)} data-testid="board-create-group">
              <option value="">{t("boards.group.none")}</option>
              {groups.map((g) => (
                <option key={g.id} value={g.id}>
                  {g.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        <label className="inline checkbox">
          <input type="checkbox" checked={approval} onChange={(e) => setApproval(e.target.checked)} data-testid="board-create-require-approval" />
          {t("boards.rule.approval.long")}
        </label>
        <label className="inline checkbox">
          <input type="checkbox" checked={evidence} onChange={(e) => setEvidence(e.target.checked)} data-testid="board-create-require-evidence" />
          {t("boards.rule.evidence.long")}
        </label>
        <div className="row end">
          <button type="button" onClick={onClose} data-testid="board-create-cancel">
            {t("common.cancel")}
          </button>
          <button type="submit" className="primary" disabled={!valid || busy} data-testid="board-create-submit">
            {t("common.create")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
