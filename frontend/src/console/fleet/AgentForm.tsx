// Create or edit an agent (admin): name and board; on create also the gateway binding and
// the agent's OpenClaw id on that gateway.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useI18n } from "../../shared/i18n";
import { Modal } from "../ui/Modal";
import { useToast } from "../ui/Toasts";
import { createAgent, keys, updateAgent } from "./api";
import type { Agent, Board, Gateway } from "./types";

export function AgentForm({
  agent,
  boards,
  gateways,
  onClose,
}: {
  /** The agent to edit; none to create one. */
  agent?: Agent;
  boards: Board[];
  gateways: Gateway[];
  onClose: () => void;
}) {
  const { t } = useI18n();
  const toast = useToast();
  const qc = useQueryClient();
  const [name, setName] = useState(agent?.name ?? "");
  const [boardId, setBoardId] = useState(agent?.board_id ?? "");
  const [gatewayId, setGatewayId] = useState("");
  const [openclawId, setOpenclawId] = useState("");
  const save = useMutation({
    mutationFn: () =>
      agent
        ? updateAgent(agent.id, { name: name.trim(), board_id: boardId || null })
        : createAgent({
            name: name.trim(),
            board_id: boardId || null,
            gateway_id: gatewayId || null,
            openclaw_agent_id: (gatewayId && openclawId.trim()) || null,
          }),
    onSuccess: () => {
      toast.success(agent ? t("common.saved") : t("fleet.agents.created"));
      void qc.invalidateQueries({ queryKey: keys.agents });
      onClose();
    },
    onError: toast.error,
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (name.trim()) save.mutate();
  };
  return (
    <Modal title={agent ? t("fleet.agents.editTitle", { name: agent.name }) : t("fleet.agents.create")} onClose={onClose}>
      <form onSubmit={submit} data-testid="agent-form">
        <label>
          {t("common.name")}
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            required
            maxLength={200}
            autoFocus
            data-testid="agent-name"
          />
        </label>
        <label>
          {t("fleet.agents.board")}
          <select value={boardId} onChange={(e) => setBoardId(e.target.value)} data-testid="agent-board">
            <option value="">{t("common.none")}</option>
            {boards.map((b) => (
              <option key={b.id} value={b.id}>
                {b.name}
              </option>
            ))}
          </select>
        </label>
        {!agent && (
          <>
            <label>
              {t("fleet.agents.gateway")}
              <select value={gatewayId} onChange={(e) => setGatewayId(e.target.value)} data-testid="agent-gateway">
                <option value="">{t("common.none")}</option>
                {gateways.map((g) => (
                  <option key={g.id} value={g.id}>
                    {g.name}
                  </option>
                ))}
              </select>
            </label>
            <label>
              {t("fleet.agents.openclawId")}
              <input
                value={openclawId}
                onChange={(e) => setOpenclawId(e.target.value)}
                disabled={!gatewayId}
                placeholder="main"
                maxLength={200}
                data-testid="agent-openclaw-id"
              />
            </label>
          </>
        )}
        <div className="row end">
          <button type="button" onClick={onClose} data-testid="agent-form-cancel">
            {t("common.cancel")}
          </button>
          <button type="submit" className="primary" disabled={!name.trim() || save.isPending} data-testid="agent-form-submit">
            {agent ? t("common.save") : t("common.create")}
          </button>
        </div>
      </form>
    </Modal>
  );
}
