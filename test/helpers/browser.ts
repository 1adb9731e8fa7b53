/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for the browser tests.
 */
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Chromium binary (override with HERALD_CHROMIUM). */
export const CHROMIUM = process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium';

/** Launch headless Chromium; `extraArgs` are added to the standard flags. */
export function launchBrowser(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', ...extraArgs],
  });
}

/**
 * Where screenshots go: docs/screenshots/ (committed with the docs) only when
 * `HERALD_UPDATE_SCREENSHOTS=1` asks for it, else test-results/screenshots/ (ignored by git), so
 * that a test run leaves the tracked files as they were.
 */
export const SCREENSHOTS =
  process.env.HERALD_UPDATE_SCREENSHOTS === '1'
    ? new URL('../../docs/screenshots/', import.meta.url)
    : new URL('../../test-results/screenshots/', import.meta.url);

/** The file path of screenshot `name` (playwright creates the folder). */
export const shot = (name: string): string => fileURLToPath(new URL(name, SCREENSHOTS));

/** Longest wait for something on a page, ms (generous: the machine is shared with benchmarks). */
export const WAIT_MS = 30_000;

/** Per-test timeout of the browser tests, ms. */
export const E2E_TEST_TIMEOUT_MS = 180_000;

/**
 * Collect the Content-Security-Policy violations a page reports (Chromium logs each refused
 * script, style, connection or frame to the console). Call before `goto`.
 */
export function cspViolations(page: Page): string[] {
  const seen: string[] = [];
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) seen.push(msg.text());
  });
  return seen;
}
