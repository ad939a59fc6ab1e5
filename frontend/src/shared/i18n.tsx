// Minimal typed i18n: each app has an English dictionary (the source of keys) and a
// zh-CN one that must have the same keys (checked by the compiler).
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";

export type Locale = "en" | "zh-CN";
export const LOCALES: Locale[] = ["en", "zh-CN"];

type Dict = Record<string, string>;

interface I18n {
  locale: Locale;
  setLocale: (l: Locale) => void;
  t: (key: string, vars?: Record<string, string | number>) => string;
}

const Ctx = createContext<I18n | null>(null);

function initialLocale(storageKey: string): Locale {
  const saved = globalThis.localStorage?.getItem(storageKey);
  if (saved === "en" || saved === "zh-CN") return saved;
  return globalThis.navigator?.language?.toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

/** Replaces `{name}` placeholders. */
export function format(template: string, vars?: Record<string, string | number>): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}

export function I18nProvider({
  dictionaries,
  storageKey,
  children,
}: {
  dictionaries: Record<Locale, Dict>;
  storageKey: string;
  children: ReactNode;
}) {
  const [locale, setLocaleState] = useState<Locale>(() => initialLocale(storageKey));
  const setLocale = useCallback(
    (l: Locale) => {
      globalThis.localStorage?.setItem(storageKey, l);
      document.documentElement.lang = l;
      setLocaleState(l);
    },
    [storageKey],
  );
  const t = useCallback(
    (key: string, vars?: Record<string, string | number>) =>
      format(dictionaries[locale][key] ?? dictionaries.en[key] ?? key, vars),
    [dictionaries, locale],
  );
  const value = useMemo(() => ({ locale, setLocale, t }), [locale, setLocale, t]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const v = useContext(Ctx);
  if (!v) throw new Error("useI18n outside I18nProvider");
  return v;
}
