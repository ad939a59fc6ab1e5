// Every console string, merged from one module per area so pages can grow independently.
import type { Locale } from "../../shared/i18n";
import boards from "./boards";
import common from "./common";
import fleet from "./fleet";
import insight from "./insight";

const modules = [common, boards, fleet, insight];

export const dictionaries: Record<Locale, Record<string, string>> = {
  en: Object.assign({}, ...modules.map((m) => m.en)),
  "zh-CN": Object.assign({}, ...modules.map((m) => m["zh-CN"])),
};
