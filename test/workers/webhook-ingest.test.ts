import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { call, counters, createClient, deadLetters, postWebhook, sign, unique } from "./helpers.ts";

const T0 = Date.UTC(2026, 10, 20, 12, 30, 15); // 2026-11-20T12:30:15Z
const sec = (ms: number) => Math.floor(ms / 1000);

describe("WhatsApp webhook verification handshake", () => {
  it("echoes the challenge when the verify token matches", async () => {
    const res = await call(`/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${env.WHATSAPP_VERIFY_TOKEN}&hub.challenge=1158201444`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("1158201444");
  });

  it("refuses a wrong token or mode with 403", async () => {
    for (const q of ["hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", `hub.mode=unsubscribe&hub.verify_token=${env.WHATSAPP_VERIFY_TOKEN}&hub.challenge=1`, ""]) {
      const res = await call(`/v1/webhooks/whatsapp?${q}`);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("verification_failed");
    }
  });
});

describe("signed status notifications", () => {
  it("counts sent, delivered and read of a message per minute of occurrence", async () => {
    const { id, phones } = await createClient();
    const wamid = `wamid.${unique("m")}`;
    const res = await postWebhook(
      webhook([
        {
          phoneNumberId: phones[0]!,
          statuses: [
            statusObject({ id: wamid, status: "sent", timestamp: sec(T0), category: "marketing" }),
            statusObject({ id: wamid, status: "delivered", timestamp: sec(T0) + 2, category: "marketing" }),
            statusObject({ id: wamid, status: "read", timestamp: sec(T0) + 70 }),
          ],
        },
      ]),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 3, duplicates: 0, ignored: 0 });
    const { body } = await counters(id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z");
    const minute = Date.UTC(2026, 10, 20, 12, 30);
    expect(body.minutes).toEqual([
      { minute, accepted: 0, sent: 1, delivered: 1, read: 0, failed: 0 },
      { minute: minute + 60_000, accepted: 0, sent: 0, delivered: 0, read: 1, failed: 0 },
    ]);
  });

  it("refuses a missing, wrong or stale signature with 401 and counts nothing", async () => {
    const { id, phones } = await createClient();
    const payload = JSON.stringify(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("m")}`, status: "sent", timestamp: sec(T0) })] }]));
    const before = (await deadLetters()).length;
    for (const signature of [null, "sha256=00", await sign(payload, "another-secret"), await sign(`${payload} `), "md5=abc"]) {
      const res = await postWebhook(payload, signature);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_signature");
    }
    expect((await counters(id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")).body.minutes).toEqual([]);
    expect((await deadLetters()).length).toBe(before);
  });
});
