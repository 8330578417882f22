import { describeActions, type ActionCatalog } from "../core/actions/catalog.js";
import { INPUT_DESCRIPTION, type ExampleObject, type SchemaObject } from "./schemas.js";

/**
 * The actions of a catalog as OpenAPI components, so that a generated client knows each one:
 * `<Action>Input` and `<Action>Result` (where the action declares a result), one submit variant
 * `<Action>Submission` each, `SubmitAsyncRequest` as their oneOf with `action` as discriminator,
 * and `AsyncRequestResult` as the `{<resultKey>: result}` of each. Built from the runtime's
 * catalog, so user actions loaded from ACTIONS are in it.
 */
export type ActionDocument = {
  schemas: Record<string, SchemaObject>;
  /** Submit bodies to try from /docs, by action: none has a callbackUrl, so nothing is delivered anywhere. */
  submitExamples: Record<string, ExampleObject>;
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Tried from /docs, these finish at once and harm nothing. */
const BUILT_IN_EXAMPLES: Record<string, ExampleObject> = {
  echo: { summary: "echo: answers at once with its input", value: { action: "echo", input: { data: { hello: "world" } } } },
  analyse: {
    summary: "analyse: counts words and repeated segments",
    value: { action: "analyse", input: { texts: ["Hello world. Hello world."] }, metadata: { orderId: "A-17" } },
  },
};

export function documentActions(catalog: ActionCatalog): ActionDocument {
  const schemas: Record<string, SchemaObject> = {};
  const submitExamples: Record<string, ExampleObject> = {};
  const variants: { $ref: string }[] = [];
  const mapping: Record<string, string> = {};
  const results: SchemaObject[] = [];
  const taken = new Set<string>();

  for (const described of describeActions(catalog)) {
    const action = catalog.get(described.name)!;
    const base = uniqueName(pascal(described.name), taken);
    const inputName = `${base}Input`;
    embed(described.inputSchema, inputName, schemas);
    // `input` may be left out only where the action's schema accepts nothing at all.
    const inputRequired = !action.input.safeParse(undefined).success;
    const variant = `${base}Submission`;
    schemas[variant] = {
      type: "object",
      title: described.name,
      description: described.description,
      properties: {
        action: { type: "string", const: described.name },
        input: { ...ref(inputName), description: INPUT_DESCRIPTION },
        callbackUrl: ref("CallbackUrl"),
        metadata: ref("Metadata"),
      },
      required: inputRequired ? ["action", "input"] : ["action"],
      additionalProperties: false,
    };
    variants.push(ref(variant));
    mapping[described.name] = ref(variant).$ref;

    let result: SchemaObject = { description: `Whatever ${described.name} returns (it declares no result schema)` };
    if (described.resultSchema) {
      embed(described.resultSchema, `${base}Result`, schemas);
      result = ref(`${base}Result`);
    }
    results.push({ type: "object", title: described.name, properties: { [described.resultKey]: result }, required: [described.resultKey] });

    const example = BUILT_IN_EXAMPLES[described.name] ?? ownExample(described.name, described.inputSchema);
    if (example) submitExamples[described.name] = example;
  }

  schemas.SubmitAsyncRequest = variants.length
    ? { oneOf: variants, discriminator: { propertyName: "action", mapping } }
    : { description: "This deployment offers no actions", not: {} };
  schemas.AsyncRequestResult = results.length
    ? { description: "`{<resultKey>: result}` of the request's action, as in the callback body", anyOf: results }
    : { type: "object" };
  return { schemas, submitExamples };
}

/** `send-mail.v2` → `SendMailV2`: component names that read like types in generated clients. */
function pascal(name: string): string {
  return name
    .split(/[^a-z0-9]+/i)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join("");
}

/** Action names differ, but `a-b` and `a_b` give the same PascalCase: number the later one. */
function uniqueName(name: string, taken: Set<string>): string {
  let unique = name;
  for (let n = 2; taken.has(unique.toLowerCase()); n++) unique = `${name}${n}`;
  taken.add(unique.toLowerCase());
  return unique;
}

/** An example from the action's own schema (`.meta({ examples: [...] })`), if it gives one. */
function ownExample(name: string, inputSchema: Record<string, unknown>): ExampleObject | undefined {
  const examples = inputSchema.examples;
  return Array.isArray(examples) && examples.length ? { summary: name, value: { action: name, input: examples[0] } } : undefined;
}

/**
 * Adds a standalone JSON Schema (zod's toJSONSchema output) as component `name`. Its `$defs`
 * (zod's, for recursive or reused parts) become components `name_<def>`, and references into
 * them or to the root (`#`) are rewritten: inside the document `#` means the document.
 */
function embed(jsonSchema: Record<string, unknown>, name: string, schemas: Record<string, SchemaObject>): void {
  const { $schema: _dialect, $defs, ...root } = jsonSchema as { $schema?: string; $defs?: Record<string, unknown> };
  const defName = (def: string) => `${name}_${def.replace(/[^a-zA-Z0-9._-]/g, "_")}`;
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (typeof value !== "object" || value === null) return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (key === "$ref" && typeof item === "string") {
        out.$ref = item === "#" ? ref(name).$ref : item.startsWith("#/$defs/") ? ref(defName(decodeURIComponent(item.slice(8)))).$ref : item;
      } else out[key] = rewrite(item);
    }
    return out;
  };
  schemas[name] = rewrite(root) as SchemaObject;
  for (const [def, schema] of Object.entries($defs ?? {})) schemas[defName(def)] = rewrite(schema) as SchemaObject;
}
