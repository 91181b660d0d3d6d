import { afterAll, describe, expect, it, vi } from "vitest";

// The page's modules read its origin, language and history on import.
vi.stubGlobal("location", new URL("http://dashboard.test/"));
vi.stubGlobal("addEventListener", () => {});
vi.stubGlobal("removeEventListener", () => {});
vi.stubGlobal("localStorage", { getItem: () => null, setItem: () => {} });
vi.stubGlobal("document", { documentElement: {} });
const { documentTitle } = await import("../../pages/src/page-title.ts");
const { route } = await import("../../pages/src/router.ts");
const { currentUser } = await import("../../pages/src/session.ts");
const { watchClient } = await import("../../pages/src/client-directory.ts");

const refusal = (status: number, code: string) => Response.json({ error: { code, message: code } }, { status });
const answers: Record<string, () => Response> = {
  "/v1/clients/acme": () => Response.json({ client_id: "acme", id: "acme", name: "Acme Varejo", timezone: "America/Sao_Paulo", currency: "BRL", active: true }),
  "/v1/clients/initech": () => refusal(403, "forbidden"),
  "/v1/clients/nobody": () => refusal(404, "client_not_found"),
};
vi.stubGlobal("fetch", async (url: string) => answers[new URL(url).pathname]!());

afterAll(() => void vi.unstubAllGlobals());

describe("a client page's title", () => {
  it("names the client once known, and says so when there is no such client or no access, never by its bare id alone", async () => {
    currentUser.value = { id: 1, email: "a@example.com", role: "admin", client_ids: [] };
    for (const [id, title] of [
      ["acme", "Acme Varejo · zapmeter"],
      ["initech", "Sem acesso a este cliente · zapmeter"],
      ["nobody", "Cliente não encontrado · zapmeter"],
    ] as const) {
      route.value = { name: "client", id };
      // Until GET /v1/clients/:id answers, the id is all there is.
      expect(documentTitle.value).toBe(`${id} · zapmeter`);
      const stop = watchClient(id);
      await vi.waitFor(() => expect(documentTitle.value).toBe(title));
      stop();
    }
    currentUser.value = null;
    expect(documentTitle.value).toBe("Entrar no zapmeter · zapmeter");
  });
});
