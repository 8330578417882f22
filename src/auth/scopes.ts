/** The scopes a token can carry. `read`: GET endpoints; `write`: submit, cancel, redeliver. */
export const SCOPES = ["read", "write"] as const;
export type Scope = (typeof SCOPES)[number];

export const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);
