import { signal } from "@preact/signals";
import type { z } from "zod";
import type { ClientSummary, ClientsResponse } from "../../schema/api.ts";
import { api } from "./api.ts";
import { clearOnUserChange } from "./session.ts";

/**
 * Names and time zones of the clients the signed-in user may see (`GET /v1/clients`), for a client
 * page opened without the overview (a link, a reload). Asked again only for a client it does not list.
 */
const known = signal<ReadonlyMap<string, ClientSummary>>(new Map());
/** Bumped when the user changes, so a list asked for by the previous user is thrown away. */
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
  const res = await api<z.infer<typeof ClientsResponse>>("/v1/clients").catch(() => null);
  if (res && asked === epoch) known.value = new Map(res.clients.map((c) => [c.client_id, c]));
}
