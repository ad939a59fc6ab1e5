// A page's strings in both locales; zh-CN must have exactly the English keys.
export function defineStrings<K extends string>(
  strings: { en: Record<K, string>; "zh-CN": Record<K, string> },
) {
  return strings;
}
