// Routes: one per page; everything but /login needs a session.
import { Navigate, Route, Routes } from "react-router-dom";
import { useI18n } from "../shared/i18n";
import { useAuth } from "./auth";
import { Layout } from "./Layout";
import { AgentsPage } from "./pages/AgentsPage";
import { BoardPage } from "./pages/BoardPage";
import { BoardsPage } from "./pages/BoardsPage";
import { EventsPage } from "./pages/EventsPage";
import { GatewayDetailPage } from "./pages/GatewayDetailPage";
import { GatewaysPage } from "./pages/GatewaysPage";
import { H5UsersPage } from "./pages/H5UsersPage";
import { JobsPage } from "./pages/JobsPage";
import { LoginPage } from "./pages/LoginPage";
import { RulesPage } from "./pages/RulesPage";
import { Empty } from "./ui/States";

function NotFound() {
  const { t } = useI18n();
  return <Empty title={t("notFound.title")} />;
}

export function App() {
  const { signedIn } = useAuth();
  if (!signedIn) {
    return (
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route path="*" element={<Navigate to="/login" replace />} />
      </Routes>
    );
  }
  return (
    <Routes>
      <Route path="/login" element={<Navigate to="/boards" replace />} />
      <Route element={<Layout />}>
        <Route index element={<Navigate to="/boards" replace />} />
        <Route path="/boards" element={<BoardsPage />} />
        <Route path="/boards/:boardId" element={<BoardPage />} />
        <Route path="/gateways" element={<GatewaysPage />} />
        <Route path="/gateways/:gatewayId" element={<GatewayDetailPage />} />
        <Route path="/agents" element={<AgentsPage />} />
        <Route path="/h5-users" element={<H5UsersPage />} />
        <Route path="/rules" element={<RulesPage />} />
        <Route path="/events" element={<EventsPage />} />
        <Route path="/jobs" element={<JobsPage />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
