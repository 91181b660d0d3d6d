import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";

/** Rows rendered beyond the visible ones, so fast scrolling shows no gaps. */
const OVERSCAN = 8;

/**
 * A scroll box's scrollTop and height as signals, for a list that renders only the rows in view of
 * it (rowWindow): `ref` and `onScroll` go on the box.
 */
export function useScrollBox<T extends HTMLElement>() {
  const scrollTop = useSignal(0);
  const height = useSignal(600);
  const ref = useRef<T>(null);
  useEffect(() => {
    const el = ref.current!;
    // A box sized by its content (a short list, under a max-height) is as tall as the rows it holds:
    // its max-height is what rows may fill once the list grows, before the observer sees it grow.
    const ro = new ResizeObserver(() => (height.value = Math.max(el.clientHeight, parseFloat(getComputedStyle(el).maxHeight) || 0)));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return { ref, scrollTop, height, onScroll: (e: { currentTarget: T }) => (scrollTop.value = e.currentTarget.scrollTop) };
}

/** The rows, `first` to before `last`, of `count` rows `rowHeight` px high in view of a box `height` px high scrolled to `scrollTop`. */
export function rowWindow(count: number, rowHeight: number, scrollTop: number, height: number): { first: number; last: number } {
  // Rows just filtered away leave the box scrolled past their end until the browser catches up: show the end, not nothing.
  const top = Math.min(scrollTop, Math.max(0, count * rowHeight - height));
  const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const last = Math.min(count, Math.ceil((top + height) / rowHeight) + OVERSCAN);
  return { first, last };
}
