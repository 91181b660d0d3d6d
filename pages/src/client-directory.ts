import { signal } from "@preact/signals";
import type { ClientSummary } from "../../schema/api.ts";
import { ApiFailure, api } from "./api.ts";
import { clearOnUserChange } from "./session.ts";

/**
 * What `GET /v1/clients/:id` said about clients the signed-in user opened a page of: the client
 * (name, time zone) for a page opened without the overview (a link, a reload), or the refusal (403,
 * 404) that means the page has nothing to show, known before the live stream's ticket is.
 */
const known = signal<ReadonlyMap<string, ClientSummary | ApiFailure>>(new Map());
/** Bumped when the user changes, so an answer asked for by the previous user is thrown away. */
let epoch = 0;

clearOnUserChange(() => {
  epoch += 1;
  known.value = new Map();
});

export function clientInfo(clientId: string): ClientSummary | undefined {
  const entry = known.value.get(clientId);
  return entry instanceof ApiFailure ? undefined : entry;
}

/** The API's refusal of the client (no access, no such client), once known. */
export function clientRefusal(clientId: string): ApiFailure | null {
  const entry = known.value.get(clientId);
  return entry instanceof ApiFailure ? entry : null;
}

/** Asks for the client unless already known; a refusal is kept, other failures leave nothing. */
export async function lookUpClient(clientId: string): Promise<void> {
  if (known.value.has(clientId)) return;
  const asked = epoch;
  let entry: ClientSummary | ApiFailure;
  try {
    entry = await api<ClientSummary>(`/v1/clients/${encodeURIComponent(clientId)}`);
  } catch (err) {
    if (!(err instanceof ApiFailure) || (err.status !== 403 && err.status !== 404)) return;
    entry = err;
  }
  if (asked === epoch) known.value = new Map(known.value).set(clientId, entry);
}
