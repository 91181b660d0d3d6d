/**
 * The demo world: ~50 clients with WhatsApp phone numbers, the dev users and the default rate card.
 * Shared by the seed (what exists) and the traffic generator (what it sends to).
 */

export interface DemoClient {
  id: string;
  name: string;
  timezone: string;
  currency: string;
  phoneNumberIds: string[];
  /** Relative traffic weight: a few big senders and a long tail, as in real life. */
  weight: number;
  /** ClientCounters its events are split over: the biggest sender shows a sharded client at work. */
  shards: number;
}

const NAMED = [
  ["acme", "Acme Varejo"],
  ["globex", "Globex Telecom"],
  ["initech", "Initech Seguros"],
  ["umbrella", "Umbrella Farma"],
  ["stark", "Stark Bank"],
  ["wayne", "Wayne Logística"],
  ["hooli", "Hooli Delivery"],
  ["tyrell", "Tyrell Viagens"],
] as const;
const TIMEZONES = ["America/Sao_Paulo", "America/Sao_Paulo", "America/Sao_Paulo", "UTC", "America/Mexico_City", "Europe/Lisbon"];

export const DEMO_CLIENTS: DemoClient[] = Array.from({ length: 50 }, (_, i) => {
  const [id, name] = NAMED[i] ?? [`loja-${String(i + 1).padStart(2, "0")}`, `Loja ${i + 1}`];
  return {
    id,
    name,
    timezone: TIMEZONES[i % TIMEZONES.length]!,
    currency: i % 7 === 3 ? "USD" : "BRL",
    phoneNumberIds: Array.from({ length: i < 8 ? 2 : 1 }, (_, j) => String(106_540_352_242_900 + i * 10 + j)),
    weight: i < 8 ? 8 - i : 1,
    shards: i === 0 ? 4 : 1,
  };
});

export { DEV_INGEST_KEY, DEV_PASSWORD } from "../../schema/dev-credentials.ts";

export const DEV_USERS = [
  { email: "admin@example.com", role: "admin", clientIds: [] as string[] },
  { email: "finance@example.com", role: "finance", clientIds: [] as string[] },
  { email: "viewer@example.com", role: "viewer", clientIds: ["acme", "globex"] },
] as const;

/**
 * Default rate card in USD micros per delivered message (list-price magnitudes of Meta's 2025 per-message
 * pricing; Brazil has its own line, every other market falls back to `*`).
 */
export const DEFAULT_RATES: { category: string; country: string; micros: number }[] = [
  { category: "marketing", country: "*", micros: 25_000 },
  { category: "marketing", country: "BR", micros: 62_500 },
  { category: "marketing_lite", country: "*", micros: 25_000 },
  { category: "utility", country: "*", micros: 4_000 },
  { category: "utility", country: "BR", micros: 6_800 },
  { category: "authentication", country: "*", micros: 13_500 },
  { category: "authentication", country: "BR", micros: 31_500 },
  { category: "authentication_international", country: "*", micros: 50_000 },
  { category: "service", country: "*", micros: 0 },
  { category: "referral_conversion", country: "*", micros: 0 },
];
