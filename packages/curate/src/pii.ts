// PII redaction, a modifier: e-mail addresses, phone numbers, IP addresses, credit-card numbers
// (Luhn-checked) and common API-key shapes are replaced by a placeholder and counted per kind.
// Patterns follow datatrove's PIIFormatter (email, IPv4) plus published key prefixes.
import type { PiiConfig, PiiKind } from "./config.js";

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const PATTERNS: Record<PiiKind, RegExp> = {
  // Vendor key prefixes: OpenAI sk-/sk-proj-, AWS AKIA/ASIA, GitHub gh?_ and github_pat_, Slack xox?-,
  // Google AIza, Hugging Face hf_, Stripe sk_live_/rk_live_, GitLab glpat-, Anthropic sk-ant-.
  api_key: new RegExp(
    [
      "\\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",
      "\\b(?:AKIA|ASIA)[0-9A-Z]{16}\\b",
      "\\bgh[pousr]_[A-Za-z0-9]{36,}\\b",
      "\\bgithub_pat_[A-Za-z0-9_]{22,}\\b",
      "\\bxox[abposr]-[A-Za-z0-9-]{10,}",
      "\\bAIza[0-9A-Za-z_-]{35}\\b",
      "\\bhf_[A-Za-z0-9]{30,}\\b",
      "\\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\\b",
      "\\bglpat-[A-Za-z0-9_-]{20,}\\b",
    ].join("|"),
    "g",
  ),
  email: /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b/g,
  // 13–19 digits, optionally grouped by spaces or dashes; kept only if the Luhn checksum holds.
  credit_card: /\b\d(?:[ -]?\d){12,18}\b/g,
  ip: new RegExp(
    `\\b${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}\\b|\\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\\b|\\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:?){0,6}[0-9A-Fa-f]{1,4}\\b`,
    "g",
  ),
  // +country code optional, area code optionally in parentheses, 3-3-4 or 2-4-4 style groups; not part of a longer digit run.
  phone: /(?<![\w+]|\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w]|[ .-]\d)/g,
};

/** Order matters: keys before e-mails (a key can contain "@"-free tokens e-mails would not take), cards before phones. */
const ORDER: readonly PiiKind[] = ["api_key", "email", "credit_card", "ip", "phone"];

/** The Luhn checksum (ISO/IEC 7812-1) that every payment card number satisfies. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

export type PiiCounts = Partial<Record<PiiKind, number>>;

/** Returns a redactor: `(text, counts) => redacted`, adding what it replaced to `counts`. */
export function makeRedactor(cfg: PiiConfig): (text: string, counts: PiiCounts) => string {
  const kinds = ORDER.filter((k) => cfg.kinds.includes(k));
  return (text, counts) => {
    let t = text;
    for (const kind of kinds) {
      const placeholder = cfg.replacement.replaceAll("{KIND}", kind.toUpperCase());
      t = t.replace(PATTERNS[kind], (m) => {
        if (kind === "credit_card" && !luhnValid(m.replace(/[ -]/g, ""))) return m;
        counts[kind] = (counts[kind] ?? 0) + 1;
        return placeholder;
      });
    }
    return t;
  };
}
