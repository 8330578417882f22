import { hash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

/**
 * Credentials and how they are kept: client secrets as scrypt hashes (slow, salted: a leaked
 * table does not give the secrets away), bearer tokens as SHA-256 digests (they are 256-bit
 * random, so a fast digest is enough and keeps look-ups cheap).
 */

const SCRYPT = { N: 16_384, r: 8, p: 1, keylen: 32 } as const;

function scryptAsync(secret: string, salt: Buffer, options: ScryptOptions & { keylen: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, options.keylen, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

const random = (bytes: number) => randomBytes(bytes).toString("base64url");

export const newClientId = () => `cli_${randomBytes(12).toString("hex")}`;
export const newClientSecret = () => `cs_${random(32)}`;
export const newAccessToken = () => `rct_${random(32)}`;
/** Standard Webhooks secrets: `whsec_` + base64 of 32 random bytes. */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString("base64")}`;

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, SCRYPT);
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString("base64"), key.toString("base64")].join("$");
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, expected] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !expected) return false;
  const expectedKey = Buffer.from(expected, "base64");
  const key = await scryptAsync(secret, Buffer.from(salt, "base64"), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    keylen: expectedKey.length,
  });
  return timingSafeEqual(key, expectedKey);
}

/** A scrypt hash to compare against when the client does not exist, so timing tells nothing. */
let dummyHash: Promise<string> | undefined;
export const dummySecretHash = () => (dummyHash ??= hashSecret(random(16)));

/** Every authenticated request digests its token: the one-shot `hash` costs a third of a Hash object. */
export const digestToken = (token: string) => hash("sha256", token, "hex");

/** Constant-time comparison of two strings of any length. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(hash("sha256", a, "buffer"), hash("sha256", b, "buffer"));
}
