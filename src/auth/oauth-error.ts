/** RFC 6749 §5.2 errors of the token and revocation endpoints; mapped to HTTP in src/api/problem.ts. */
export type OAuthErrorCode = "invalid_request" | "invalid_client" | "invalid_grant" | "unsupported_grant_type" | "invalid_scope" | "unsupported_token_type";

export class OAuthError extends Error {
  override name = "OAuthError";
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    /** Whether the client tried HTTP Basic: a 401 then names the Basic scheme (RFC 6749 §5.2). */
    readonly usedBasic = false,
  ) {
    super(description);
  }
  get status(): number {
    return this.error === "invalid_client" ? 401 : 400;
  }
}
