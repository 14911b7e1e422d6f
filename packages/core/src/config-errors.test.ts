// Config files (recipes, config.json, adapter_config.json) as users get them wrong: every problem a
// UserError at its line, JSON called JSON, an unclosed bracket at the line it opens on, resource
// bombs refused. (config.json's own checks: model/src/config.test.ts.)
import { describe, expect, it } from "vitest";
import { parseLocated } from "./config-errors.js";
import { UserError } from "./errors.js";

function problemOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).format();
  }
  throw new Error("was accepted");
}

describe("parseLocated", () => {
  it("reports an unclosed flow sequence at the line where it opens, not where the parser noticed", () => {
    const text = ["name: x", "model:", "  path: m", "curate:", "  inputs: [ {path: a.jsonl}", "  seq_len: 64", ""].join("\n");
    expect(problemOf(() => parseLocated(text, "r.yaml"))).toBe("r.yaml:5: invalid YAML: unclosed [ (a flow sequence must end with ])");
    expect(problemOf(() => parseLocated("a: it's fine\nb: {c: 1\nd: 2\n", "r.yaml"))).toBe(
      "r.yaml:2: invalid YAML: unclosed { (a flow mapping must end with })",
    );
  });

  it("refuses a YAML alias bomb without expanding it", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++)
      lines.push(
        `${"abcdefghi"[i]}: &${"abcdefghi"[i]} [${Array(9)
          .fill(`*${"abcdefghi"[i - 1]}`)
          .join(", ")}]`,
      );
    expect(problemOf(() => parseLocated(lines.join("\n"), "bomb.yaml"))).toBe(
      "bomb.yaml: YAML aliases expand to too much data (more than 100 expansions); write the values out instead of nesting anchors",
    );
  });

  it("refuses brackets nested thousands deep before the YAML parser sees them", () => {
    expect(problemOf(() => parseLocated("a:\n  " + "[".repeat(100_000), "deep.yaml"))).toBe(
      "deep.yaml:2: brackets nested more than 64 levels deep",
    );
  });

  it("calls a .json file that is not JSON invalid JSON, at its line", () => {
    expect(problemOf(() => parseLocated('{\n  "hidden_size": 16,\n  "head_dim": }\n', "config.json"))).toBe(
      "config.json:3: not valid JSON (Unexpected token '}')",
    );
    expect(problemOf(() => parseLocated('{"a": 1}\n\ntrailing', "config.json"))).toMatch(
      /^config\.json:3: not valid JSON \(Unexpected non-whitespace character after JSON\)$/,
    );
    expect(problemOf(() => parseLocated("", "config.json"))).toBe("config.json:1: not valid JSON (Unexpected end of JSON input)");
  });
});
