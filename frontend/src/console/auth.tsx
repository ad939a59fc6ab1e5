// Who is signed in, in which organization, with which role.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import type { Schema } from "../shared/api/client";
import { api, session, unwrap } from "./api";

export type Me = Schema<"Me">;
export type Role = Schema<"Role">;

interface Auth {
  signedIn: boolean;
  me: Me | undefined;
  role: Role | undefined;
  orgId: string | null | undefined;
  login: (email: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
  switchOrg: (orgId: string) => Promise<void>;
}

const Ctx = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const qc = useQueryClient();
  const [signedIn, setSignedIn] = useState(() => session.get() !== null);
  useEffect(() => session.subscribe((s) => setSignedIn(s !== null)), []);

  const me = useQuery({
    queryKey: ["me", signedIn],
    enabled: signedIn,
    queryFn: async () => unwrap(await api.GET("/api/v1/auth/me")),
  });

  const login = useCallback(
    async (email: string, password: string) => {
      const res = unwrap(await api.POST("/api/v1/auth/login", { body: { email, password } }));
      session.set(res);
      qc.clear();
    },
    [qc],
  );
  const logout = useCallback(async () => {
    const s = session.get();
    if (s) {
      await api.POST("/api/v1/auth/logout", { body: { refresh_token: s.refresh_token } }).catch(() => undefined);
    }
    session.clear();
    qc.clear();
  }, [qc]);
  const switchOrg = useCallback(
    async (orgId: string) => {
      const res = unwrap(await api.POST("/api/v1/auth/switch-org", { body: { organization_id: orgId } }));
      session.set({ ...res, organization_id: res.organization_id ?? orgId });
      await qc.resetQueries();
    },
    [qc],
  );

  const orgId = me.data?.current_organization_id;
  const role = me.data?.organizations.find((o) => o.id === orgId)?.role;
  return (
    <Ctx.Provider value={{ signedIn, me: me.data, role, orgId, login, logout, switchOrg }}>
      {children}
    </Ctx.Provider>
  );
}

export function useAuth(): Auth {
  const v = useContext(Ctx);
  if (!v) throw new Error("useAuth outside AuthProvider");
  return v;
}

/** Roles from least to most privileged, as the server ranks them (identity/model.rs). */
const ROLE_RANK: Record<Role, number> = { viewer: 0, developer: 1, operator: 2, admin: 3 };

/** Whether `role` is `min` or above. */
export function roleAtLeast(role: Role | undefined, min: Role): boolean {
  return role !== undefined && ROLE_RANK[role] >= ROLE_RANK[min];
}

/** Whether the current role is `min` or above (docs/permissions.md says which each action needs). */
export function useRoleAtLeast(min: Role): boolean {
  return roleAtLeast(useAuth().role, min);
}

/** Whether the current role may change things (viewers only read). */
export function useCanWrite(): boolean {
  return useRoleAtLeast("developer");
}
