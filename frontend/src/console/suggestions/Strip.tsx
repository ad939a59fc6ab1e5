// A compact, horizontally scrolling strip of one board's pending suggestions, shown above
// the Kanban columns. Live through the tab's shared suggestion stream; renders nothing
// when the board has none.
import { useQuery } from "@tanstack/react-query";
import { useI18n } from "../../shared/i18n";
import { fetchSuggestions, keys } from "./data";
import { useSuggestionStream } from "./stream";
import { SuggestionItem } from "./SuggestionItem";
import "./insight.css";

export function SuggestionStrip({ boardId }: { boardId: string }) {
  const { t } = useI18n();
  useSuggestionStream();
  const q = { status: "pending", board_id: boardId, limit: 20 } as const;
  const list = useQuery({ queryKey: keys.suggestionList(q), queryFn: () => fetchSuggestions(q) });
  const items = list.data?.items ?? [];
  if (!items.length) return null;
  const more = (list.data?.total ?? items.length) - items.length;
  return (
    <section className="suggestion-strip" data-testid="suggestion-strip" aria-label={t("suggestions.stripLabel")}>
      <h2 className="sr-only">{t("suggestions.stripLabel")}</h2>
      <ul>
        {items.map((s) => (
          <SuggestionItem key={s.id} s={s} compact />
        ))}
      </ul>
      {more > 0 && <span className="muted">{t("suggestions.more", { count: more })}</span>}
    </section>
  );
}
