// Exact dedup key: SHA-1 of the text after lowercasing and collapsing whitespace (so copies that
// differ only in case or spacing count as the same), as datatrove's ExactDedup does with simplified text.
import { createHash } from "node:crypto";

/** A 20-byte digest (base64) identifying the normalized text. */
export function exactKey(text: string): string {
  const normalized = text.toLowerCase().replace(/\s+/g, " ").trim();
  return createHash("sha1").update(normalized, "utf8").digest("base64");
}
