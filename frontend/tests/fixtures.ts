// Boards and tasks as the API sends them, for the board tests.
import type { Board, Task } from "../src/shared/protocol/boardSync";

const AT = "2025-01-01T00:00:00Z";

export function makeBoard(over: Partial<Board> = {}): Board {
  return {
    id: "b1",
    organization_id: "o1",
    name: "Launch",
    slug: "launch",
    max_agents: 5,
    require_approval_for_done: false,
    require_evidence_for_done: false,
    created_at: AT,
    updated_at: AT,
    ...over,
  };
}

export function makeTask(id: string, over: Partial<Task> = {}): Task {
  return {
    id,
    board_id: "b1",
    title: `Task ${id}`,
    status: "todo",
    priority: "medium",
    evidence: [],
    position: 1024,
    version: 1,
    blocked_by: [],
    tag_ids: [],
    status_changed_at: AT,
    created_by_type: "user",
    created_by_id: "u1",
    created_at: AT,
    updated_at: AT,
    ...over,
  };
}
