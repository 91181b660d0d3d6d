import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { rowWindow } from "../../pages/src/row-window.ts";

const ROW = 32;
const BOX = 600;

/** The rows at least partly in view of a box `height` px high scrolled to `scrollTop`. */
function inView(count: number, scrollTop: number, height: number): [number, number] {
  return [Math.min(count, Math.floor(scrollTop / ROW)), Math.min(count, Math.ceil((scrollTop + height) / ROW))];
}

describe("a long list rendered as the rows in view of its box", () => {
  it("renders every row in view, and some beyond on each side, wherever the box is scrolled", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 1, max: 2_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (count, height, at) => {
        const scrollTop = Math.max(0, count * ROW - height) * at;
        const { first, last } = rowWindow(count, ROW, scrollTop, height);
        const [from, to] = inView(count, scrollTop, height);
        expect(first).toBeGreaterThanOrEqual(0);
        expect(first).toBeLessThanOrEqual(from);
        expect(last).toBeGreaterThanOrEqual(to);
        expect(last).toBeLessThanOrEqual(count);
        if (from > 0) expect(first).toBeLessThan(from);
        if (to < count) expect(last).toBeGreaterThan(to);
      }),
      { numRuns: 2_000 },
    );
  });

  it("renders a few dozen rows of 10,000, not all of them", () => {
    for (const scrollTop of [0, 5_000 * ROW, 10_000 * ROW - BOX]) {
      const { first, last } = rowWindow(10_000, ROW, scrollTop, BOX);
      expect(last - first).toBeLessThan(50);
    }
  });

  it("renders an empty list as no rows, and a list shorter than its box whole", () => {
    expect(rowWindow(0, ROW, 0, BOX)).toEqual({ first: 0, last: 0 });
    expect(rowWindow(5, ROW, 0, BOX)).toEqual({ first: 0, last: 5 });
    expect(rowWindow(1, ROW, 0, 1)).toEqual({ first: 0, last: 1 });
  });

  it("renders the last row when the box is scrolled to the end", () => {
    expect(rowWindow(10_000, ROW, 10_000 * ROW - BOX, BOX).last).toBe(10_000);
  });

  it("renders the end of a list a filter just shortened, while the box is still scrolled past it", () => {
    // Scrolled to the end of 10,000 rows; the filter left fewer, or none, before the browser scrolls back.
    const scrollTop = 10_000 * ROW - BOX;
    for (const count of [9_000, 1_000, 30, 2, 0]) {
      const atEnd = Math.max(0, count * ROW - BOX);
      expect(rowWindow(count, ROW, scrollTop, BOX), `${count} rows`).toEqual(rowWindow(count, ROW, atEnd, BOX));
      expect(rowWindow(count, ROW, scrollTop, BOX).last).toBe(count);
    }
  });
});
