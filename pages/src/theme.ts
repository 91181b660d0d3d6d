import { effect, signal } from "@preact/signals";

export type Theme = "light" | "dark";
const THEME_KEY = "zapmeter.theme";
const stored = localStorage.getItem(THEME_KEY);

/** Light or dark: the system's preference until the user picks one. */
export const theme = signal<Theme>(
  stored === "dark" || stored === "light" ? stored : matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light",
);
effect(() => {
  document.documentElement.dataset.theme = theme.value;
});

export function toggleTheme(): void {
  theme.value = theme.value === "dark" ? "light" : "dark";
  localStorage.setItem(THEME_KEY, theme.value);
}
