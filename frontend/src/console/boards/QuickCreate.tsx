// The input at the top of a column: type a title, press Enter.
import { useId, useState } from "react";
import { useI18n } from "../../shared/i18n";
import type { TaskStatus } from "../../shared/protocol/boardSync";

export function QuickCreate({ status, onCreate }: { status: TaskStatus; onCreate: (title: string) => void }) {
  const { t } = useI18n();
  const [title, setTitle] = useState("");
  const id = useId();
  return (
    <form
      className="quick-create"
      onSubmit={(e) => {
        e.preventDefault();
        const trimmed = title.trim();
        if (!trimmed) return;
        onCreate(trimmed);
        setTitle("");
      }}
    >
      <label htmlFor={id} className="sr-only">
        {t("board.quickCreate.label", { column: t(`task.status.${status}`) })}
      </label>
      <input
        id={id}
        value={title}
        maxLength={500}
        placeholder={t("board.quickCreate.placeholder")}
        onChange={(e) => setTitle(e.target.value)}
        onKeyDown={(e) => e.key === "Escape" && setTitle("")}
        data-testid="quick-create-input"
        data-status={status}
      />
    </form>
  );
}
