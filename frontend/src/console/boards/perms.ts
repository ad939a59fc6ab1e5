// What the signed-in role may do on boards (docs/permissions.md), so pages hide or disable
// controls the API would refuse anyway.
import { useRoleAtLeast } from "../auth";

export interface BoardPerms {
  /** Create, edit and delete boards (boards: manage). */
  manageBoards: boolean;
  /** Create tasks and comments (tasks: create). */
  createTasks: boolean;
  /** Edit tasks and their dependencies (tasks: update). */
  updateTasks: boolean;
  /** Move tasks between and within columns (tasks: execute). */
  moveTasks: boolean;
  /** Delete tasks (tasks: delete). */
  deleteTasks: boolean;
  /** Ask for an approval (approvals: create). */
  requestApprovals: boolean;
  /** Approve or reject (approvals: execute). */
  resolveApprovals: boolean;
}

export function useBoardPerms(): BoardPerms {
  const admin = useRoleAtLeast("admin");
  const operator = useRoleAtLeast("operator");
  const developer = useRoleAtLeast("developer");
  return {
    manageBoards: admin,
    createTasks: developer,
    updateTasks: operator,
    moveTasks: operator,
    deleteTasks: admin,
    requestApprovals: developer,
    resolveApprovals: operator,
  };
}
