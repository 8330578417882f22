/**
 * RFC 6749 §5.2 errors of the token endpoint, and RFC 7009 §2.2.1 ones of the revocation
 * endpoint; mapped to HTTP in src/api/problem.ts.
 */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "unsupported_token_type";

const BASIC_CHALLENGE = 'Basic realm="ricochet"';

export class OAuthError extends Error {
  override name = "OAuthError";
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    /**
     * Whether a 401 challenges with HTTP Basic: when the client tried Basic (RFC 6749 §5.2 makes
     * the challenge a MUST then) or sent no credentials at all. A client that authenticated with
     * body parameters gets no challenge: OAuth libraries read any WWW-Authenticate on a token
     * answer as a protected-resource challenge and never look at the `invalid_client` body.
     */
    readonly basicChallenge = false,
  ) {
    super(description);
  }
  get status(): number {
    return this.error === "invalid_client" ? 401 : 400;
  }
  /** The WWW-Authenticate value to answer with, if any. */
  get challenge(): string | undefined {
    return this.status === 401 && this.basicChallenge ? BASIC_CHALLENGE : undefined;
  }
}
