// Agents and members by id, for assignee pickers and names on cards.
import { useQuery } from "@tanstack/react-query";
import type { Schema } from "../../shared/api/client";
import { api, unwrap } from "../api";

export type Agent = Schema<"Agent">;
export type Member = Schema<"Member">;

export interface People {
  agents: Agent[];
  members: Member[];
  /** A display name for a task's assignee, or null when unassigned. */
  assigneeName: (task: { assignee_agent_id?: string | null; assignee_user_id?: string | null }) => string | null;
}

export function usePeople(): People {
  const agents = useQuery({
    queryKey: ["agents", "all"],
    queryFn: async () => unwrap(await api.GET("/api/v1/agents", { params: { query: { limit: 100 } } })).items,
  });
  const members = useQuery({
    queryKey: ["members", "all"],
    queryFn: async () => unwrap(await api.GET("/api/v1/members", { params: { query: { limit: 100 } } })).items,
  });
  const agentList = agents.data ?? [];
  const memberList = members.data ?? [];
  return {
    agents: agentList,
    members: memberList,
    assigneeName: (task) => {
      if (task.assignee_agent_id) {
        return agentList.find((a) => a.id === task.assignee_agent_id)?.name ?? task.assignee_agent_id.slice(0, 8);
      }
      if (task.assignee_user_id) {
        const m = memberList.find((x) => x.user.id === task.assignee_user_id);
        return m ? (m.user.display_name ?? m.user.email) : task.assignee_user_id.slice(0, 8);
      }
      return null;
    },
  };
}
