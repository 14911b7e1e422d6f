import { describe, expect, it } from "vitest";
import { piiSchema } from "./config.js";
import { luhnValid, makeRedactor, type PiiCounts } from "./pii.js";

describe("PII redaction", () => {
  const redact = makeRedactor(piiSchema.parse({}));
  it.each([
    ["write to jane.doe+news@example.co.uk today", "write to <EMAIL> today", "email"],
    ["server at 192.168.1.254 is down", "server at <IP> is down", "ip"],
    ["not an IP: 999.1.1.1", "not an IP: 999.1.1.1", undefined],
    ["card 4111 1111 1111 1111 expires", "card <CREDIT_CARD> expires", "credit_card"],
    ["order 4111 1111 1111 1112 (fails Luhn)", "order 4111 1111 1111 1112 (fails Luhn)", undefined],
    ["call (555) 123-4567 now", "call <PHONE> now", "phone"],
    ["call +1 555 123 4567 now", "call <PHONE> now", "phone"],
    ["key sk-proj-abcdefghijklmnopqrstuvwxyz123456 leaked", "key <API_KEY> leaked", "api_key"],
    ["AWS AKIAIOSFODNN7EXAMPLE here", "AWS <API_KEY> here", "api_key"],
    ["token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 here", "token <API_KEY> here", "api_key"],
    ["the year 2024 and 3.14", "the year 2024 and 3.14", undefined],
  ])("%s", (text, expected, kind) => {
    const counts: PiiCounts = {};
    expect(redact(text, counts)).toBe(expected);
    if (kind) expect(counts[kind as keyof PiiCounts]).toBe(1);
    else expect(counts).toEqual({});
  });
  it("checks card numbers with the Luhn algorithm (ISO/IEC 7812-1 test numbers)", () => {
    expect(luhnValid("79927398713")).toBe(true);
    expect(luhnValid("79927398710")).toBe(false);
  });
});
