import { signal } from "@preact/signals";
import type { ClientSummary } from "../../schema/api.ts";
import { api } from "./api.ts";
import { clearOnUserChange } from "./session.ts";

/**
 * Names and time zones of clients the signed-in user opened a page of (`GET /v1/clients/:id`), for a
 * client page opened without the overview (a link, a reload).
 */
const known = signal<ReadonlyMap<string, ClientSummary>>(new Map());
/** Bumped when the user changes, so an answer asked for by the previous user is thrown away. */
let epoch = 0;

clearOnUserChange(() => {
  epoch += 1;
  known.value = new Map();
});

export function clientInfo(clientId: string): ClientSummary | undefined {
  return known.value.get(clientId);
}

/** Makes sure `clientInfo(clientId)` is filled if the user may see that client; failures leave it empty. */
export async function lookUpClient(clientId: string): Promise<void> {
  if (known.value.has(clientId)) return;
  const asked = epoch;
  const client = await api<ClientSummary>(`/v1/clients/${encodeURIComponent(clientId)}`).catch(() => null);
  if (client && asked === epoch) known.value = new Map(known.value).set(clientId, client);
}
