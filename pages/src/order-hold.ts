import { signal } from "@preact/signals";

/** What holds the overview's order: the keyboard (focus in the rows) or the pointer (over them). */
export type OrderHolder = "focus" | "pointer";

/**
 * How long the order stays held once the pointer has left the rows: a pointer that slips off the
 * table for a moment, or crosses its edge on the way to a row, must not find the rows moved.
 */
export const POINTER_RELEASE_MS = 1_000;

/**
 * The overview's row order frozen while someone is about to act on a row. A live re-sort would carry
 * the focused row out of the rendered window (dropping the focus) or move another row under the
 * pointer just before its click lands. The numbers stay live; the order catches up once nothing holds it.
 */
export class OrderHold {
  /** The client ids in the held order; null while the order follows the sort. */
  readonly order = signal<readonly string[] | null>(null);
  private readonly holders = new Set<OrderHolder>();
  private pointerTimer: ReturnType<typeof setTimeout> | undefined;

  /** `current` is the order on screen, kept as it is if nothing held it yet. */
  hold(by: OrderHolder, current: () => readonly string[]): void {
    if (by === "pointer") clearTimeout(this.pointerTimer);
    this.holders.add(by);
    this.order.value ??= current();
  }

  /** Focus lets go at once (it left the rows); the pointer a moment after it left them. */
  release(by: OrderHolder): void {
    if (by === "focus") return this.drop(by);
    clearTimeout(this.pointerTimer);
    this.pointerTimer = setTimeout(() => this.drop(by), POINTER_RELEASE_MS);
  }

  /** The user asked for another order (a sort): what is held becomes that one. */
  retake(current: readonly string[]): void {
    if (this.order.value) this.order.value = current;
  }

  clear(): void {
    clearTimeout(this.pointerTimer);
    this.holders.clear();
    this.order.value = null;
  }

  private drop(by: OrderHolder): void {
    this.holders.delete(by);
    if (this.holders.size === 0) this.order.value = null;
  }
}

/** `rows` in the held `order` (rows it does not know, new since, last), or as they are when nothing holds it. */
export function inHeldOrder<T extends { client_id: string }>(rows: T[], order: readonly string[] | null): T[] {
  if (!order) return rows;
  const byId = new Map(rows.map((r) => [r.client_id, r]));
  const known = new Set(order);
  return [...order.flatMap((id) => byId.get(id) ?? []), ...rows.filter((r) => !known.has(r.client_id))];
}
