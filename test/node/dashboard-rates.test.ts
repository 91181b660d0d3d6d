import { describe, expect, it } from "vitest";
import { deliveryRate, readRate } from "../../pages/src/rates.ts";

const counts = (sent: number, delivered: number, read: number) => ({ accepted: 0, sent, delivered, read, failed: 0 });

describe("the dashboard's rates stay rates", () => {
  it("divides as usual when every status came", () => {
    expect(deliveryRate(counts(10, 8, 4))).toBe(0.8);
    expect(readRate(counts(10, 8, 4))).toBe(0.5);
  });

  it("counts a read without its delivered (read as it arrived) as reaching the phone: never over 100 %", () => {
    // The QA case: 4 sent, 4 delivered, 5 more read with no delivered read 225 %.
    expect(readRate(counts(9, 4, 9))).toBe(1);
    expect(deliveryRate(counts(9, 4, 9))).toBe(1);
  });

  it("stops the delivery rate at 100 % when yesterday's messages are delivered today", () => {
    expect(deliveryRate(counts(2, 5, 0))).toBe(1);
  });

  it("has no rate when there is nothing to divide by", () => {
    expect(deliveryRate(counts(0, 3, 0))).toBeNull();
    expect(readRate(counts(5, 0, 0))).toBeNull();
  });
});
