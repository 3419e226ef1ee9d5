import type { ConsoleFiles } from '../console/build';
import { methodNotAllowed, notFound, type ProblemError } from '../lambdas/shared/problem';
import { problemResult } from '../lambdas/middleware/http';
import { resultToResponse, type LocalResponse } from './api-gateway-event';
import { CONSOLE_CLIENT_ID, DEV_ISSUER_PREFIX } from './dev-issuer-oidc';
import { pageHeaders, pageResponse, type LocalSite } from './site';

/**
 * The web console at /console: built from console/src on the first request (esbuild, in
 * memory, once per process) and served with a strict CSP. Its config.json points sign-in at
 * the dev issuer's authorization code + PKCE endpoints (local/dev-issuer-oidc.ts).
 */

/** Where the console lives on the local runtime. */
export const CONSOLE_PATH = '/console';

let build: Promise<ConsoleFiles> | undefined;

/** The console's files, built once per process (a failed build is retried on the next request). */
export function consoleFiles(): Promise<ConsoleFiles> {
  if (!build) {
    const pending = import('../console/build').then((m) => m.buildConsole());
    build = pending;
    pending.catch(() => {
      if (build === pending) build = undefined;
    });
  }
  return build;
}

/** config.json of the local console. */
export function localConsoleConfig(): Record<string, string> {
  return {
    clientId: CONSOLE_CLIENT_ID,
    scope: 'openid',
    authorizationEndpoint: `${DEV_ISSUER_PREFIX}/authorize`,
    tokenEndpoint: `${DEV_ISSUER_PREFIX}/token`,
    issuerLabel: 'the local dev issuer (pick a demo person)',
  };
}

function problem(error: ProblemError): LocalResponse {
  return resultToResponse(problemResult(error.problem, error.headers))!;
}

const FILES: Record<string, { name: string; type: string }> = {
  '/console/': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/index.html': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { name: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { name: 'app.css', type: 'text/css; charset=utf-8' },
};

/** Serves /console and its files; undefined for any other path. */
export const consoleSite: LocalSite = async (req) => {
  if (req.rawPath !== CONSOLE_PATH && !req.rawPath.startsWith(`${CONSOLE_PATH}/`)) return undefined;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return problem(methodNotAllowed(['GET', 'HEAD']));
  }
  // Relative URLs in index.html (app.js, config.json) need the trailing slash.
  if (req.rawPath === CONSOLE_PATH) return pageResponse(308, { location: `${CONSOLE_PATH}/`, 'cache-control': 'no-store' });
  if (req.rawPath === `${CONSOLE_PATH}/config.json`) return pageResponse(200, pageHeaders('application/json'), JSON.stringify(localConsoleConfig()));
  const file = FILES[req.rawPath];
  if (!file) return problem(notFound(`The console has no ${req.rawPath.slice(0, 200)}.`));
  const body = (await consoleFiles()).get(file.name);
  if (!body) return problem(notFound(`The console build has no ${file.name}.`));
  return pageResponse(200, pageHeaders(file.type), req.method === 'HEAD' ? '' : body);
};
