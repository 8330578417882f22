import { AppError } from "../shared/errors.js";

/** Opaque keyset cursor for newest-first lists: the last row's creation time and id. */
export type Cursor = { createdAt: Date; id: string };

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.toISOString(), cursor.id])).toString("base64url");
}

export function decodeCursor(text: string): Cursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as [string, string];
    const date = new Date(createdAt);
    if (typeof id !== "string" || !/^[0-9a-f-]{36}$/.test(id) || Number.isNaN(date.getTime())) throw new Error();
    return { createdAt: date, id };
  } catch {
    throw new AppError("invalid", "The cursor is not one this API issued", {
      errors: [{ path: "cursor", message: "unrecognised cursor; pass nextCursor from a previous page" }],
    });
  }
}
