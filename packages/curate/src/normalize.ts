// Text normalizers applied to every piece of an example before filtering: Unicode NFC, control
// character removal, and whitespace cleanup that keeps indentation (code stays code).
import type { NormalizeConfig } from "./config.js";

// C0 and C1 controls except \t (09) and \n (0A); \r is handled with line endings.
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;
// Zero-width characters and the BOM: invisible, and they split words for every filter.
const ZERO_WIDTH = /[\u200B\u200C\u200D\u2060\uFEFF]/g;
// Unicode spaces that are not " ": NBSP, en/em spaces, thin spaces, ideographic space.
const ODD_SPACES = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/g;

/** Returns a function that normalizes one string per `cfg`. */
export function makeNormalizer(cfg: NormalizeConfig): (s: string) => string {
  return (s) => {
    let t = s;
    if (cfg.nfc) t = t.normalize("NFC");
    if (cfg.whitespace) t = t.replace(/\r\n?/g, "\n");
    if (cfg.control_chars) t = t.replace(CONTROL, "").replace(ZERO_WIDTH, "");
    if (cfg.whitespace) {
      t = t
        .replace(ODD_SPACES, " ")
        .replace(/[ \t]+$/gm, "") // trailing spaces on each line
        .replace(/\n{4,}/g, "\n\n\n") // at most two blank lines in a row
        .trim();
    }
    return t;
  };
}
