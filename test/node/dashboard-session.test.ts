import { afterAll, describe, expect, it, vi } from "vitest";

// The session and router modules read the page's origin and listen for history on import.
vi.stubGlobal("location", new URL("http://dashboard.test/clients/acme"));
vi.stubGlobal("addEventListener", () => {});
const { currentUser, loadSession, logout, runsBilling, seesBilling, seesReports, sessionEnd, sessionUnreachable } = await import("../../pages/src/session.ts");
const { api } = await import("../../pages/src/api.ts");
const { loginPath, parseRoute } = await import("../../pages/src/router.ts");

const user = { id: 7, email: "a@example.com", role: "viewer", client_ids: ["acme"] };
const unauthorized = () => Response.json({ error: { code: "unauthorized", message: "session ended" } }, { status: 401 });

/** Answers every call with `answer`'s response for its path. */
function server(answer: (path: string) => Response): void {
  vi.stubGlobal("fetch", async (url: string) => answer(new URL(url).pathname));
}

async function signedIn(): Promise<void> {
  server(() => Response.json({ user }));
  await loadSession();
  expect(currentUser.value?.id).toBe(7);
}

afterAll(() => void vi.unstubAllGlobals());

describe("the page a path names", () => {
  it("names a client by its decoded id, and no page for a link whose escapes do not decode (it blanked the app)", () => {
    expect(parseRoute("/clients/acme%20br/")).toEqual({ name: "client", id: "acme br" });
    for (const path of ["/clients/acme%E0%A4%A", "/clients/%"]) expect(parseRoute(path)).toEqual({ name: "not-found" });
  });
});

describe("where a tab whose session is gone goes to sign in", () => {
  it("keeps the page of a first visit with no session, saying nothing ended", async () => {
    // A page just loaded: not the state another test's sign-out left in these modules.
    currentUser.value = undefined;
    sessionEnd.value = null;
    server(unauthorized);
    await loadSession();
    expect(currentUser.value).toBeNull();
    expect(sessionEnd.value).toBeNull();
    expect(loginPath(sessionEnd.value, "/clients/acme")).toBe("/login?next=%2Fclients%2Facme");
  });

  it("drops the page after a sign-out, so the next user does not land on the last one's client", async () => {
    await signedIn();
    server(() => Response.json({ ok: true }));
    await logout();
    expect(sessionEnd.value).toBe("signed-out");
    expect(loginPath(sessionEnd.value, "/clients/acme")).toBe("/login");
  });

  it("drops it too when the sign-out call finds the session already over", async () => {
    await signedIn();
    server(unauthorized);
    await logout();
    expect(sessionEnd.value).toBe("signed-out");
  });

  it("keeps the page when the session ended by itself (a 401 on any call), until the next sign-in", async () => {
    await signedIn();
    server(unauthorized);
    await expect(api("/v1/clients/acme")).rejects.toMatchObject({ status: 401 });
    expect(currentUser.value).toBeNull();
    expect(sessionEnd.value).toBe("expired");
    expect(loginPath(sessionEnd.value, "/clients/acme")).toBe("/login?next=%2Fclients%2Facme");
    await signedIn();
    expect(sessionEnd.value).toBeNull();
  });
});

describe("a page loaded while the API does not answer", () => {
  it("waits and asks again (no network, then a 503) instead of sending a signed-in user to sign in", async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      vi.stubGlobal("fetch", async () => {
        calls++;
        if (calls === 1) throw new TypeError("Failed to fetch");
        if (calls === 2) return new Response("", { status: 503 });
        return Response.json({ user });
      });
      currentUser.value = undefined;
      const loading = loadSession();
      await vi.advanceTimersByTimeAsync(0);
      expect([calls, currentUser.value, sessionUnreachable.value]).toEqual([1, undefined, true]);
      await vi.advanceTimersByTimeAsync(1_000);
      expect([calls, currentUser.value, sessionUnreachable.value]).toEqual([2, undefined, true]);
      await vi.advanceTimersByTimeAsync(2_000);
      await loading;
      expect([calls, currentUser.peek()?.id, sessionUnreachable.value]).toEqual([3, 7, false]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("takes a 500 for no answer too, not for a signed-out user", async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      vi.stubGlobal("fetch", async () => (++calls === 1 ? Response.json({ error: { code: "internal", message: "boom" } }, { status: 500 }) : Response.json({ user })));
      currentUser.value = undefined;
      const loading = loadSession();
      await vi.advanceTimersByTimeAsync(0);
      expect([calls, currentUser.value, sessionUnreachable.value]).toEqual([1, undefined, true]);
      await vi.advanceTimersByTimeAsync(1_000);
      await loading;
      expect([calls, currentUser.peek()?.id, sessionUnreachable.value]).toEqual([2, 7, false]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("asks again at most every 10 s however long the API stays down, not in a tight loop", async () => {
    vi.useFakeTimers();
    try {
      const at: number[] = [];
      let up = false;
      vi.stubGlobal("fetch", async () => {
        at.push(Date.now());
        if (!up) throw new TypeError("Failed to fetch");
        return Response.json({ user });
      });
      currentUser.value = undefined;
      const loading = loadSession();
      await vi.advanceTimersByTimeAsync(60_000);
      const waits = at.slice(1).map((t, i) => t - at[i]!);
      expect(waits).toEqual([1_000, 2_000, 5_000, 10_000, 10_000, 10_000, 10_000, 10_000]);
      up = true;
      await vi.advanceTimersByTimeAsync(10_000);
      await loading;
      expect(currentUser.peek()?.id).toBe(7);
    } finally {
      vi.useRealTimers();
    }
  });

  it("says the API answers again when its answer is that nobody is signed in", async () => {
    vi.useFakeTimers();
    try {
      let calls = 0;
      vi.stubGlobal("fetch", async () => {
        if (++calls === 1) throw new TypeError("Failed to fetch");
        return unauthorized();
      });
      currentUser.value = undefined;
      const loading = loadSession();
      await vi.advanceTimersByTimeAsync(0);
      expect(sessionUnreachable.value).toBe(true);
      await vi.advanceTimersByTimeAsync(1_000);
      await loading;
      expect([calls, currentUser.peek(), sessionUnreachable.value]).toEqual([2, null, false]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("what each role is offered", () => {
  it("offers computing a day's billing to admins only, billing to finance and admins, reports to viewers and admins", () => {
    const as = (role: "admin" | "finance" | "viewer") => ({ ...user, role });
    expect((["admin", "finance", "viewer"] as const).map((r) => [runsBilling(as(r)), seesBilling(as(r)), seesReports(as(r))])).toEqual([
      [true, true, true],
      [false, true, false],
      [false, false, true],
    ]);
  });
});
