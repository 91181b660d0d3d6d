import { readFileSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { STATUSES } from "../../schema/event.ts";

// i18n keeps the chosen language in localStorage and names it on <html>.
vi.stubGlobal("localStorage", { getItem: () => "en", setItem: () => {} });
vi.stubGlobal("document", { documentElement: {} });
const { chartSummary, chartXRange } = await import("../../pages/src/chart-summary.ts");
const { locale } = await import("../../pages/src/i18n.ts");

describe("the client page's chart", () => {
  it("pads its time axis by half a minute each side, so the first and the current minute's bars are whole", () => {
    expect(chartXRange(1_800_000_000, 1_800_010_740)).toEqual([1_799_999_970, 1_800_010_770]);
  });

  it("calls what a minute sums status events, not notifications (a message counts once per status)", () => {
    const xs = [0, 60];
    const ys = STATUSES.map((s) => (s === "sent" ? [1, 3] : s === "delivered" ? [0, 2] : [0, 0]));
    expect(chartSummary({ xs, ys })).toMatch(/^In this period: 0 accepted, 4 sent, 2 delivered, 0 read, 0 failed\. Busiest minute: .+, with 5 status events\.$/);
    locale.value = "pt-BR";
    expect(chartSummary({ xs, ys })).toMatch(/Minuto mais movimentado: .+, com 5 eventos de status\.$/);
  });
});

/** The custom properties of one rule of styles.css (`:root` or `[data-theme="dark"]`). */
function themeColors(selector: string): Record<string, string> {
  const css = readFileSync(new URL("../../pages/src/styles.css", import.meta.url), "utf8");
  const body = css.slice(css.indexOf(`${selector} {`)).split("}")[0]!;
  return Object.fromEntries([...body.matchAll(/--([\w-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1]!, m[2]!]));
}

function contrast(a: string, b: string): number {
  const luminance = (hex: string) => {
    const [r, g, bl] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

describe("the statuses' colours (the chart's bars)", () => {
  it.each([":root", '[data-theme="dark"]'])("stand 3:1 against the panel in %s, and apart from each other", (selector) => {
    const colors = themeColors(selector);
    for (const status of STATUSES) expect(contrast(colors[status]!, colors.panel!), status).toBeGreaterThanOrEqual(3);
    expect(new Set(STATUSES.map((s) => colors[s])).size).toBe(STATUSES.length);
  });
});
