import { classify, type Verdict } from "./policy.ts";

/** Posts one JSON array of events; resolves to what the response means, or throws on a network failure. */
export type PostBatch = (events: string[]) => Promise<Verdict>;

/**
 * The HTTP side of the bridge: `POST <endpoint>` with the ingest key as a bearer token. `events` are JSON
 * texts, joined rather than re-serialised (they were parsed once already to be checked).
 */
export function httpPoster(endpoint: string, apiKey: string, timeoutMs = 30_000): PostBatch {
  return async (events) => {
    const res = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: `[${events.join(",")}]`,
      // Followed, a 301/302 would turn the POST into a GET of the new address; better to say the URL is wrong.
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // A proxy's HTML error page: the status alone decides.
    }
    return classify(res.status, body, { retryAfter: res.headers.get("retry-after"), location: res.headers.get("location") });
  };
}
