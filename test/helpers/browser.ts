/**
 * Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for the browser tests.
 */
import { type Browser, chromium } from 'playwright-core';

/** Chromium binary (override with HERALD_CHROMIUM). */
export const CHROMIUM = process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium';

/** Launch headless Chromium. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** Where screenshots go (committed with the docs). */
export const SCREENSHOTS = new URL('../../docs/screenshots/', import.meta.url);
