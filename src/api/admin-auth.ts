import type { Context, MiddlewareHandler } from "hono";
import { safeEqual } from "../auth/credentials.js";
import { AppError } from "../shared/errors.js";
import type { AppEnv } from "./env.js";

/** Where the browser dashboard lives (bull-board), under the admin guard like the rest. */
export const DASHBOARD_PATH = "/admin/queues";

const BEARER_CHALLENGE = 'Bearer realm="ricochet-admin"';
const BASIC_CHALLENGE = 'Basic realm="ricochet admin", charset="UTF-8"';

/** The ADMIN_TOKEN as a bearer token, or as the password of HTTP Basic (RFC 7617; any user name). */
function presentedToken(authorization: string): { token: string; basic: boolean } {
  const bearer = /^Bearer +(\S+)$/i.exec(authorization);
  if (bearer) return { token: bearer[1]!, basic: false };
  const basic = /^Basic +([A-Za-z0-9+/]+=*)$/i.exec(authorization);
  if (!basic) return { token: "", basic: false };
  const userPass = Buffer.from(basic[1]!, "base64").toString("utf8");
  const colon = userPass.indexOf(":");
  return { token: colon < 0 ? "" : userPass.slice(colon + 1), basic: true };
}

/**
 * Whether a browser sent this request from another site. A browser attaches Basic credentials it
 * has cached on its own, so a page elsewhere could make it POST here (CSRF). The rule is that of
 * Go's http.CrossOriginProtection: Sec-Fetch-Site when the browser sends it, else Origin against
 * Host; a request with neither comes from no browser (curl, scripts) and is let through.
 */
function crossSite(c: Context): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined) return site !== "same-origin" && site !== "none";
  const origin = c.req.header("origin");
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== new URL(c.req.url).host;
  } catch {
    return true; // "null" (a sandboxed or privacy-sensitive context) or garbage
  }
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Guards /admin/*: 404 while ADMIN_TOKEN is unset, else the token is required. Scripts send it
 * as a bearer token. A browser cannot send one when it navigates, but it answers a Basic
 * challenge by prompting and then sends the credentials with every request of the dashboard
 * (pages, assets, its API calls), so Basic is accepted too, for changes only from the same site.
 * Chrome does not prompt when the Basic challenge follows a Bearer one in the same header, so
 * the dashboard challenges with Basic alone.
 */
export function adminAuth(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const { adminToken } = c.get("services");
    if (!adminToken) throw new AppError("not_found", "The admin API is disabled (set ADMIN_TOKEN)");
    const presented = presentedToken(c.req.header("authorization") ?? "");
    if (!safeEqual(presented.token, adminToken)) {
      const dashboard = c.req.path === DASHBOARD_PATH || c.req.path.startsWith(`${DASHBOARD_PATH}/`);
      const challenge = dashboard ? BASIC_CHALLENGE : `${BEARER_CHALLENGE}, ${BASIC_CHALLENGE}`;
      throw new AppError("unauthorized", "Send Authorization: Bearer <ADMIN_TOKEN>, or HTTP Basic with ADMIN_TOKEN as the password", {
        headers: { "www-authenticate": challenge },
      });
    }
    if (presented.basic && !SAFE_METHODS.has(c.req.method) && crossSite(c)) {
      throw new AppError("forbidden", "A change with Basic credentials must come from this site's own pages; scripts send Authorization: Bearer");
    }
    await next();
  };
}
