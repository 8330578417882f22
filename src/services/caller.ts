/** Who is calling, from a verified bearer token: every operation is scoped to the caller's tenant. */
export type Caller = { tenantId: string; clientId: string };
