/**
 * The web pages served by Herald: the demo chat at `/` (files under `<root>/chat/`), the admin
 * dashboard at `/admin` (`<root>/admin/`, protected like the server API), and the browser bundle
 * of the SDK at `/sdk/herald-client.js` (built by `npm run build:client`; in a source checkout it
 * is bundled on first request when esbuild is installed).
 *
 * Every page answer carries a strict Content-Security-Policy (scripts, styles and connections
 * from this origin only, no framing, no `<base>`, forms post here only), `Referrer-Policy:
 * same-origin` (no referrer leaves the site; `no-referrer` would make Chromium send `Origin:
 * null` with the sign-in form, which the cross-site guard refuses) and
 * `X-Content-Type-Options: nosniff`. The admin page signs in with a form POST
 * to `/admin/login` that sets an HttpOnly session cookie (see admin-session.ts): the key is
 * never readable by a script on the page.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeraldError } from '../core/errors.js';
import { keyEquals, type NetPolicy } from '../core/net-policy.js';
import { mediaType, readBody, requestFacts } from '../transports/http.js';
import { adminCookie, adminSessionCookie, newAdminSession } from './admin-session.js';

/** Options of the web pages. */
export interface WebOptions {
  /** Serve the chat at `/`. */
  readonly chat: boolean;
  /** Serve the admin dashboard at `/admin`. */
  readonly admin: boolean;
  /** Directory with `chat/` and `admin/` ("" = the installation's `web/`). */
  readonly root: string;
  /** The API key, if configured (signing in on the admin page checks it). */
  readonly apiKey?: string;
  /** The server speaks TLS: the admin session cookie is `Secure`. */
  readonly secure?: boolean;
  /** The node's network policy (Host and cross-site checks of the admin pages). */
  readonly net: NetPolicy;
  /** Whether a request may use the API (key header, admin session for reads, or loopback trust without a key). */
  readonly authorized: (req: IncomingMessage) => boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Installation directory (two levels above this module in both src/ and dist/). */
const INSTALL_DIR = fileURLToPath(new URL('../../', import.meta.url));
const SDK_DIST = join(INSTALL_DIR, 'clients/js/dist/herald-client.browser.js');
const SDK_ENTRY = join(INSTALL_DIR, 'clients/js/src/index.ts');
const FROM_SOURCE = import.meta.url.endsWith('.ts') && existsSync(SDK_ENTRY);

/**
 * The admin sign-in page (answered with 401). `wrongKey`: the key just posted was not accepted,
 * which the page says. The form posts to `/admin/login` (no script needed; /admin/login.js only
 * focuses the field), so the page works under the `script-src 'self'` policy.
 */
const loginPage = (wrongKey: boolean): string => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Herald admin — sign in</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/admin/login.css"></head><body>
<form id="f" method="post" action="/admin/login"><h2>Herald admin</h2><label>API key <input id="k" name="key" type="password" autocomplete="off" required></label><button>Sign in</button>
<p id="login-error" class="error" role="alert">${wrongKey ? 'Wrong API key: this key was not accepted. Check it and try again.' : ''}</p></form>
<script type="module" src="/admin/login.js"></script>
</body></html>`;

/** Largest sign-in form body, bytes. */
const MAX_LOGIN_BODY = 4096;

/** A Host header fit to appear in the policy (anything else leaves connect-src at 'self'). */
const HOST_RE = /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$/;

/**
 * Security headers of every page answer. `connect-src` names the page's own host over ws: and
 * wss: besides 'self', for browsers that do not count WebSocket URLs of the same host as 'self'.
 */
export function pageHeaders(host: string | undefined): Record<string, string> {
  const ws = host !== undefined && HOST_RE.test(host) ? ` ws://${host} wss://${host}` : '';
  return {
    'content-security-policy':
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
      `connect-src 'self'${ws}; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`,
    'referrer-policy': 'same-origin',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  };
}

/** Files of the sign-in page, served without the key. */
const LOGIN_FILES = new Set(['/admin/login.js', '/admin/login.css']);

/** Serves the pages; returns a handler for the server's handler chain. */
export class WebPages {
  readonly #opts: WebOptions;
  readonly #root: string;
  #bundle: Promise<Buffer> | undefined;

  constructor(options: WebOptions) {
    this.#opts = options;
    this.#root = resolve(options.root || join(INSTALL_DIR, 'web'));
  }

  /** Handle a request; false when the path is not a page. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const p = url.pathname;
    const { chat, admin } = this.#opts;
    if (admin && p === '/admin/login' && req.method === 'POST') return this.#login(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const headers = pageHeaders(req.headers.host);
    if (chat && (p === '/' || p === '/index.html')) return this.#file(res, headers, 'chat', 'index.html');
    if (chat && p.startsWith('/chat/')) return this.#file(res, headers, 'chat', p.slice('/chat/'.length));
    if ((chat || admin) && p === '/favicon.svg') return this.#file(res, headers, '', 'favicon.svg');
    if (admin && LOGIN_FILES.has(p)) return this.#file(res, headers, 'admin', p.slice('/admin/'.length));
    if (admin && (p === '/admin' || p === '/admin/' || p.startsWith('/admin/'))) {
      // A navigation from another site may open the page (it holds no secret); anything else
      // cross-site, and any unknown Host (DNS rebinding), is refused.
      const facts = requestFacts(req);
      const navigation = req.headers['sec-fetch-mode'] === 'navigate';
      const refused = navigation
        ? this.#opts.net.hostAllowed(facts.host)
          ? undefined
          : 'Host header not allowed (see allowedHosts)'
        : this.#opts.net.crossSiteReason(facts);
      if (refused) throw new HeraldError('HERALD_ERR_FORBIDDEN', refused);
      if (!this.#opts.authorized(req)) {
        // A session cookie that no longer works (expired, or the key changed) is cleared.
        const clear: Record<string, string> = adminSessionCookie(req) === undefined ? {} : { 'set-cookie': adminCookie(undefined, this.#secure) };
        res.writeHead(401, { ...headers, ...clear, 'content-type': TYPES['.html']!, 'cache-control': 'no-store' }).end(loginPage(false));
        return true;
      }
      const rest = p === '/admin' || p === '/admin/' ? 'index.html' : p.slice('/admin/'.length);
      return this.#file(res, headers, 'admin', rest);
    }
    if ((chat || admin) && (p === '/sdk/herald-client.js' || p === '/sdk/herald-client.js.map')) return this.#sdk(res, headers, p.endsWith('.map'));
    return false;
  }

  get #secure(): boolean {
    return this.#opts.secure ?? false;
  }

  /**
   * `POST /admin/login` (the sign-in form, `key=<API key>` form-encoded): the right key gets the
   * HttpOnly session cookie and a 303 to `/admin`; a wrong one the sign-in page again (401) saying
   * so. Same-origin only (the cross-site and Host checks of the admin page).
   */
  async #login(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const refused = this.#opts.net.crossSiteReason(requestFacts(req));
    if (refused) throw new HeraldError('HERALD_ERR_FORBIDDEN', refused);
    const type = mediaType(req);
    if (type !== 'application/x-www-form-urlencoded')
      throw new HeraldError('HERALD_ERR_UNSUPPORTED_MEDIA_TYPE', 'Sign in with the form (application/x-www-form-urlencoded)');
    const given = new URLSearchParams((await readBody(req, MAX_LOGIN_BODY)).toString('utf8')).get('key') ?? undefined;
    const key = this.#opts.apiKey;
    const headers = pageHeaders(req.headers.host);
    if (key === undefined || key === '' || !keyEquals(given, key)) {
      res.writeHead(401, { ...headers, 'content-type': TYPES['.html']!, 'cache-control': 'no-store' }).end(loginPage(true));
      return true;
    }
    res.writeHead(303, { ...headers, location: '/admin', 'set-cookie': adminCookie(newAdminSession(key), this.#secure), 'cache-control': 'no-store' }).end();
    return true;
  }

  /** A file under the web root: `area` '' for the root itself (the favicon). */
  async #file(res: ServerResponse, headers: Record<string, string>, area: '' | 'chat' | 'admin', rel: string): Promise<boolean> {
    const dir = area ? join(this.#root, area) : this.#root;
    const path = normalize(join(dir, rel));
    if (!path.startsWith(dir + sep)) throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No such page');
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No such page');
    }
    res.writeHead(200, {
      ...headers,
      'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
    });
    res.end(body);
    return true;
  }

  async #sdk(res: ServerResponse, headers: Record<string, string>, map: boolean): Promise<boolean> {
    if (map) {
      if (FROM_SOURCE) throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No source map');
      if (!existsSync(`${SDK_DIST}.map`)) throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No source map');
      res.writeHead(200, { ...headers, 'content-type': TYPES['.map']! }).end(await readFile(`${SDK_DIST}.map`));
      return true;
    }
    this.#bundle ??= this.#loadBundle();
    let body: Buffer;
    try {
      body = await this.#bundle;
    } catch (err) {
      this.#bundle = undefined;
      throw new HeraldError('HERALD_ERR_UNAVAILABLE', `SDK bundle missing: run \`npm run build:client\` (${(err as Error).message})`);
    }
    res.writeHead(200, { ...headers, 'content-type': TYPES['.js']!, 'cache-control': 'no-cache' }).end(body);
    return true;
  }

  async #loadBundle(): Promise<Buffer> {
    // Running from the TypeScript sources (tsx): bundle the SDK sources so the page never gets a stale build.
    if (!FROM_SOURCE && existsSync(SDK_DIST)) return readFile(SDK_DIST);
    // A source checkout without a build: bundle in memory once (esbuild comes with the dev tools).
    const esbuild = (await import('esbuild' as string)) as { build(o: object): Promise<{ outputFiles: Array<{ contents: Uint8Array }> }> };
    const out = await esbuild.build({ entryPoints: [SDK_ENTRY], bundle: true, format: 'esm', platform: 'browser', target: 'es2020', write: false });
    return Buffer.from(out.outputFiles[0]!.contents);
  }
}
