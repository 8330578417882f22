/** Who is calling: every operation is scoped to the caller's tenant. */
export type Caller = { tenantId: string; clientId: string };

/** Until authentication lands, every call acts as this caller of the seeded default tenant. */
export const DEFAULT_CALLER: Caller = { tenantId: "default", clientId: "anonymous" };
