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
/** Why the last ask for a client failed when it was neither an answer nor a refusal (a 5xx, no network). */
const failing = signal<ReadonlyMap<string, unknown>>(new Map());
/** Bumped when the user changes, so an answer asked for by the previous user is thrown away. */
let epoch = 0;
/** Pause before asking again after a failure. */
const RETRY_MS = 5_000;

clearOnUserChange(() => {
  epoch += 1;
  known.value = new Map();
  failing.value = new Map();
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

/** Why the client could not be asked for just now (it is being asked again), or null. */
export function clientLookupFailure(clientId: string): unknown {
  return failing.value.get(clientId) ?? null;
}

/**
 * Asks for the client while a page shows it: once on opening (again each time, since its name or
 * time zone may have changed since the last page), and after a failure every few seconds until an
 * answer or a refusal comes. Returns the function that stops asking.
 */
export function watchClient(clientId: string): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ask = async () => {
    const asked = epoch;
    let entry: ClientSummary | ApiFailure;
    try {
      entry = await api<ClientSummary>(`/v1/clients/${encodeURIComponent(clientId)}`);
    } catch (err) {
      if (stopped || asked !== epoch) return;
      if (!(err instanceof ApiFailure) || (err.status !== 403 && err.status !== 404)) {
        failing.value = new Map(failing.value).set(clientId, err);
        timer = setTimeout(() => void ask(), RETRY_MS);
        return;
      }
      entry = err;
    }
    if (asked !== epoch) return;
    known.value = new Map(known.value).set(clientId, entry);
    if (failing.value.has(clientId)) {
      const next = new Map(failing.value);
      next.delete(clientId);
      failing.value = next;
    }
  };
  void ask();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
