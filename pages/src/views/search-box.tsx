import type { Signal } from "@preact/signals";

/** A search field that filters a list as one types, its placeholder doubling as its accessible name. */
export function SearchBox({ label, text }: { label: string; text: Signal<string> }) {
  return <input type="search" placeholder={label} aria-label={label} value={text.value} onInput={(e) => (text.value = e.currentTarget.value)} />;
}
