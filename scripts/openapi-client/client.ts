/**
 * A typed client over the types that openapi-typescript generates from /openapi.json (written
 * beside this file as schema.d.ts by scripts/check-openapi.sh and test/openapi.test.ts). It must
 * compile: the document has to keep telling a generated client the paths, bodies and answers,
 * including each action's own input.
 */
import type { components, paths } from "./schema.js";

type Method = "get" | "post" | "put" | "patch" | "delete";
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;
type JsonBody<O> = O extends { requestBody: { content: { "application/json": infer Body } } } ? Body : undefined;
type JsonAnswer<O, Status extends number> = O extends { responses: { [S in Status]: { content: { "application/json": infer Answer } } } } ? Answer : never;

/** What openapi-fetch does, in a few lines: path, method, body and answer typed by the document. */
export async function call<P extends keyof paths, M extends Method, Status extends number>(
  baseUrl: string,
  token: string,
  method: M,
  path: P,
  body: JsonBody<Operation<P, M>>,
  expected: Status,
): Promise<JsonAnswer<Operation<P, M>, Status>> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: method.toUpperCase(),
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status !== expected) throw new Error(`${method} ${path} answered ${response.status}`);
  return (await response.json()) as JsonAnswer<Operation<P, M>, Status>;
}

type Submit = components["schemas"]["SubmitAsyncRequest"];
type Status = components["schemas"]["AsyncRequest"]["status"];

export const echo: Submit = { action: "echo", input: { data: { hello: "world" }, delayMs: 10 } };
// @ts-expect-error echo's input has no `texts`: each action's input is its own type
export const echoWithAnalyseInput: Submit = { action: "echo", input: { texts: ["Hello"] } };
// @ts-expect-error an action the deployment does not offer
export const unknownAction: Submit = { action: "no-such-action", input: {} };

/** Submits, then reads the request back: every name below comes from the generated types. */
export async function submitEcho(baseUrl: string, token: string): Promise<Status> {
  const accepted = await call(baseUrl, token, "post", "/api/v1/async", echo, 202);
  const id: string = accepted.asyncRequest.id;
  const tokenAnswer: components["schemas"]["TokenResponse"]["token_type"] = "Bearer";
  void tokenAnswer;
  return id ? accepted.asyncRequest.status : "QUEUED";
}
