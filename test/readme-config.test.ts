import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES, parseVariable } from "../src/config.js";

/**
 * The README's configuration table against the config schema: every variable the service reads
 * is documented, nothing documented is unknown, and every default the table states is the
 * schema's (read through the same parser, so `15s` and `15000` compare alike).
 */
function readmeTable(): { name: string; defaultText: string }[] {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("| variable | default | meaning |"));
  const table = section.slice(0, section.indexOf("\n\n")); // the table ends at the first blank line
  const rows = table.split("\n").slice(2).filter((line) => line.startsWith("| `"));
  return rows.flatMap((row) => {
    const [names, defaults] = row.split(" | ").map((cell) => cell.replace(/^\| /, ""));
    const nameList = names!.split(" / ").map((n) => n.replaceAll("`", "").trim());
    const defaultList = nameList.length > 1 ? defaults!.split(" / ") : [defaults!];
    return nameList.map((name, i) => ({ name, defaultText: defaultList[i]!.trim() }));
  });
}

describe("README configuration table", () => {
  const table = readmeTable();

  it("documents every variable the service reads, and no other", () => {
    expect(table.map((row) => row.name).sort()).toEqual([...CONFIG_VARIABLES].sort());
  });

  it.each(table)("states the schema's default for $name", ({ name, defaultText }) => {
    const schemaDefault = parseVariable(name, undefined);
    const literal = /^`([^`]*)`$/.exec(defaultText)?.[1];
    if (literal !== undefined) {
      expect(parseVariable(name, literal)).toEqual(schemaDefault);
    } else if (defaultText === "empty") {
      expect(schemaDefault).toEqual([]);
    } else {
      // "unset", "system resolver", "local: generated …": no default in the schema.
      expect([undefined, []]).toContainEqual(schemaDefault);
    }
  });
});

describe("README: Write your own action", () => {
  it("shows examples/greeter's action exactly as CI runs it", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const source = readFileSync(new URL("../examples/greeter/actions/page-title.ts", import.meta.url), "utf8");
    expect(readme).toContain("```ts\n" + source + "```");
  });
});

describe("README: the callback's headers", () => {
  it("shows webhook-id in the format the service sends", async () => {
    const { callbackMessageId } = await import("../src/shared/callbacks.js");
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const example = /webhook-id: msg_<request id, no dashes>_<series> +e\.g\. (msg_([0-9a-f]{32})_1):/.exec(readme);
    expect(example).not.toBeNull();
    const hex = example![2]!;
    const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    expect(callbackMessageId(id, 1)).toBe(example![1]);
  });
});
