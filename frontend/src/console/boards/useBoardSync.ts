// A board's live state for the page: a REST snapshot for the first paint (and as the
// fallback while the socket is down), the board sync socket for everything after, and
// moves/creates that show at once and are confirmed or reverted by the server.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { ApiError } from "../../shared/api/errors";
import { useI18n } from "../../shared/i18n";
import type { Task, TaskPriority, TaskStatus } from "../../shared/protocol/boardSync";
import { BoardSyncClient, commandId, type SyncStatus } from "../../shared/ws/boardSync";
import { api, session, unwrap } from "../api";
import { useToast } from "../ui/Toasts";
import { boardReducer, columns, initialBoardState, positionAt, type BoardState } from "./reducer";

export interface BoardSync {
  state: BoardState;
  status: SyncStatus;
  /** Error loading the REST snapshot (only shown when the socket has not delivered either). */
  loadError: unknown;
  move: (taskId: string, status: TaskStatus, position?: number) => void;
  create: (title: string, status: TaskStatus, priority?: TaskPriority) => void;
  /** Applies a task a REST call returned. */
  upsert: (task: Task) => void;
  /** Forgets a task deleted through REST. */
  remove: (taskId: string) => void;
}

export function boardStateKey(boardId: string) {
  return ["board-state", boardId] as const;
}

export function useBoardSync(boardId: string): BoardSync {
  const [state, dispatch] = useReducer(boardReducer, initialBoardState);
  const [status, setStatus] = useState<SyncStatus>("connecting");
  const toast = useToast();
  const { t } = useI18n();
  const qc = useQueryClient();
  const clientRef = useRef<BoardSyncClient | null>(null);
  // Callbacks created once per socket read the latest of these.
  const latest = useRef({ toast, t, state });
  latest.current = { toast, t, state };

  const rest = useQuery({
    queryKey: boardStateKey(boardId),
    queryFn: async () => unwrap(await api.GET("/api/v1/boards/{id}/state", { params: { path: { id: boardId } } })),
    // Poll only while the socket cannot keep us current.
    refetchInterval: status === "live" ? false : 15_000,
  });
  useEffect(() => {
    if (rest.data) dispatch({ type: "rest", snapshot: rest.data });
  }, [rest.data]);

  useEffect(() => {
    const client = new BoardSyncClient({
      boardId,
      token: () => session.accessToken(),
      orgId: () => session.get()?.org_id,
      onFrame: (frame) => {
        dispatch({ type: "frame", frame });
        if (frame.type === "error" && frame.id) {
          latest.current.toast.error(new ApiError(409, frame.code.toLowerCase(), frame.message, frame.details));
        } else if (frame.type === "suggestion.new") {
          void qc.invalidateQueries({ queryKey: ["suggestions"] });
        } else if (frame.type === "board.updated") {
          void qc.invalidateQueries({ queryKey: ["boards"] });
        }
      },
      onStatus: (s) => setStatus(s),
      onLost: (ids) => {
        dispatch({ type: "revert", ids });
        latest.current.toast.info(latest.current.t("board.sync.lost"));
      },
    });
    clientRef.current = client;
    client.start();
    return () => {
      client.stop();
      clientRef.current = null;
    };
  }, [boardId, qc]);

  const move = useCallback(
    (taskId: string, to: TaskStatus, position?: number) => {
      const current = latest.current.state;
      // Without an explicit position the task goes to the end of its new column.
      const pos = position ?? positionAt(columns(current)[to].filter((c) => c.task.id !== taskId).map((c) => c.task), Infinity);
      const viaSocket = clientRef.current?.move(taskId, to, pos) ?? null;
      if (viaSocket) {
        dispatch({ type: "optimisticMove", id: viaSocket, taskId, status: to, position: pos });
        return;
      }
      const id = commandId();
      dispatch({ type: "optimisticMove", id, taskId, status: to, position: pos });
      void (async () => {
        try {
          const task = unwrap(
            await api.POST("/api/v1/tasks/{id}/transition", {
              params: { path: { id: taskId } },
              body: { status: to, position: pos },
            }),
          );
          dispatch({ type: "confirm", id, task });
        } catch (err) {
          dispatch({ type: "revert", ids: [id] });
          latest.current.toast.error(err);
        }
      })();
    },
    [],
  );

  const create = useCallback((title: string, to: TaskStatus, priority?: TaskPriority) => {
    const current = latest.current.state;
    const pos = positionAt(columns(current)[to].map((c) => c.task), Infinity);
    const viaSocket = clientRef.current?.create({ title, status: to, ...(priority ? { priority } : {}) }) ?? null;
    if (viaSocket) {
      dispatch({ type: "optimisticCreate", id: viaSocket, title, status: to, priority, position: pos });
      return;
    }
    const id = commandId();
    dispatch({ type: "optimisticCreate", id, title, status: to, priority, position: pos });
    void (async () => {
      try {
        const task = unwrap(
          await api.POST("/api/v1/boards/{id}/tasks", {
            params: { path: { id: boardId } },
            body: { title, status: to, ...(priority ? { priority } : {}) },
          }),
        );
        dispatch({ type: "confirm", id, task });
      } catch (err) {
        dispatch({ type: "revert", ids: [id] });
        latest.current.toast.error(err);
      }
    })();
  }, [boardId]);

  const upsert = useCallback((task: Task) => dispatch({ type: "upsert", task }), []);
  const remove = useCallback((taskId: string) => dispatch({ type: "remove", taskId }), []);

  return { state, status, loadError: rest.error, move, create, upsert, remove };
}
