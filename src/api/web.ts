/**
 * The web pages served by Herald: the demo chat at `/` (files under `<root>/chat/`), the admin
 * dashboard at `/admin` (`<root>/admin/`, protected like the server API), and the browser bundle
 * of the SDK at `/sdk/herald-client.js` (built by `npm run build:client`; in a source checkout it
 * is bundled on first request when esbuild is installed).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HeraldError } from '../core/errors.js';
import { keyEquals, type NetPolicy } from '../core/net-policy.js';
import { requestFacts } from '../transports/http.js';

/** Options of the web pages. */
export interface WebOptions {
  /** Serve the chat at `/`. */
  readonly chat: boolean;
  /** Serve the admin dashboard at `/admin`. */
  readonly admin: boolean;
  /** Directory with `chat/` and `admin/` ("" = the installation's `web/`). */
  readonly root: string;
  /** The API key, if configured (the admin page also accepts it as the `herald_key` cookie). */
  readonly apiKey?: string;
  /** The node's network policy (Host and cross-site checks of the admin pages). */
  readonly net: NetPolicy;
  /** Whether a request may use the API (key header, or loopback trust without a key). */
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
 * The admin sign-in page (answered with 401). `wrongKey`: the request carried a key cookie that
 * does not match, which the page says. Its script is a file (/admin/login.js, served without the
 * key), so the page works under a `script-src 'self'` policy.
 */
const loginPage = (wrongKey: boolean): string => `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Herald admin — sign in</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/admin/login.css"></head><body>
<form id="f"><h2>Herald admin</h2><label>API key <input id="k" type="password" autocomplete="off" required></label><button>Sign in</button>
<p id="login-error" class="error" role="alert">${wrongKey ? 'Wrong API key: this key was not accepted. Check it and try again.' : ''}</p></form>
<script type="module" src="/admin/login.js"></script>
</body></html>`;

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
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (chat && (p === '/' || p === '/index.html')) return this.#file(res, 'chat', 'index.html');
    if (chat && p.startsWith('/chat/')) return this.#file(res, 'chat', p.slice('/chat/'.length));
    if ((chat || admin) && p === '/favicon.svg') return this.#file(res, '', 'favicon.svg');
    if (admin && LOGIN_FILES.has(p)) return this.#file(res, 'admin', p.slice('/admin/'.length));
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
      if (!this.#adminAllowed(req)) {
        res.writeHead(401, { 'content-type': TYPES['.html']!, 'cache-control': 'no-store' }).end(loginPage(this.#keyCookie(req) !== undefined));
        return true;
      }
      const rest = p === '/admin' || p === '/admin/' ? 'index.html' : p.slice('/admin/'.length);
      return this.#file(res, 'admin', rest);
    }
    if ((chat || admin) && (p === '/sdk/herald-client.js' || p === '/sdk/herald-client.js.map')) return this.#sdk(res, p.endsWith('.map'));
    return false;
  }

  #adminAllowed(req: IncomingMessage): boolean {
    if (this.#opts.authorized(req)) return true;
    const key = this.#opts.apiKey;
    const given = this.#keyCookie(req);
    return key !== undefined && key !== '' && given !== undefined && keyEquals(given, key);
  }

  /** The `herald_key` cookie, if the request has one ('' when it cannot be decoded). */
  #keyCookie(req: IncomingMessage): string | undefined {
    const m = /(?:^|;\s*)herald_key=([^;]*)/.exec(req.headers.cookie ?? '');
    if (!m) return undefined;
    try {
      return decodeURIComponent(m[1]!);
    } catch {
      return '';
    }
  }

  /** A file under the web root: `area` '' for the root itself (the favicon). */
  async #file(res: ServerResponse, area: '' | 'chat' | 'admin', rel: string): Promise<boolean> {
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
      'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
    return true;
  }

  async #sdk(res: ServerResponse, map: boolean): Promise<boolean> {
    if (map) {
      if (FROM_SOURCE) throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No source map');
      if (!existsSync(`${SDK_DIST}.map`)) throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No source map');
      res.writeHead(200, { 'content-type': TYPES['.map']! }).end(await readFile(`${SDK_DIST}.map`));
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
    res.writeHead(200, { 'content-type': TYPES['.js']!, 'cache-control': 'no-cache' }).end(body);
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
