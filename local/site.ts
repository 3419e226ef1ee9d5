import type { IncomingHttpHeaders } from 'node:http';
import type { LocalResponse } from './api-gateway-event';

/**
 * Pages the local runtime serves beside the API: the web console and the dev issuer's
 * sign-in endpoints. In AWS neither is part of API Gateway (CloudFront serves the console,
 * the identity provider signs people in), so they are not in the route table.
 */

/** One request to a page, as much of it as pages need. */
export interface SiteRequest {
  method: string;
  rawPath: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Reads the body, at most `limit` bytes; `too-large` past it. */
  readBody(limit: number): Promise<Buffer | undefined | 'too-large'>;
}

/** Answers a request it serves, or undefined to let the API route it. */
export type LocalSite = (req: SiteRequest) => Promise<LocalResponse | undefined>;

/** Minimal HTML escaping for the few server-rendered pages (the console itself renders no HTML strings). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * The Content-Security-Policy of every page: scripts and styles only from this origin, no
 * inline script or style, no plugins, no framing, no base-URI tricks; forms post only here.
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Security headers of every page (the same set CloudFront's response headers policy adds in AWS). */
export function pageHeaders(contentType: string): Record<string, string> {
  return {
    'content-type': contentType,
    'content-security-policy': PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cache-control': 'no-store',
  };
}

/** A response with `body` (string as UTF-8). */
export function pageResponse(statusCode: number, headers: Record<string, string>, body: string | Uint8Array = ''): LocalResponse {
  return { statusCode, headers, body: typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body) };
}

/** The first of `sites` that answers. */
export function combineSites(...sites: LocalSite[]): LocalSite {
  return async (req) => {
    for (const site of sites) {
      const res = await site(req);
      if (res) return res;
    }
    return undefined;
  };
}
