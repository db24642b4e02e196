// A real browser for portal tests: Debian's Chromium driven by playwright-core (never a downloaded one),
// an accessibility check that fails on any axe-core violation, screenshots kept as test artefacts, and
// the weight of a page as a browser receives it.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

export const CHROMIUM = process.env.CAREBRIDGE_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'portal');

/** Chromium, or a plain explanation of how to get it (CI installs it: .ci/run). */
export async function openBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`The portal's browser tests need Chromium at ${CHROMIUM}. Install it with: sudo apt-get install -y chromium (or set CAREBRIDGE_CHROMIUM to a Chromium binary). Do not run "npx playwright install".`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Fails with every violation listed (rule, impact, the elements) when axe-core finds any: WCAG 2.2 AA and best practice. */
export async function assertAccessible(page: Page, label: string): Promise<void> {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']).analyze();
  if (results.violations.length) {
    const lines = results.violations.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.target.join(' ')).join('\n    ')}`);
    throw new Error(`${label}: ${results.violations.length} accessibility violation(s):\n  ${lines.join('\n  ')}`);
  }
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

export interface PageWeight {
  /** Bytes on the wire (headers and compressed bodies) for the page and everything it loaded, fonts excluded. */
  bytes: number;
  requests: { url: string; type: string; bytes: number }[];
}

/** Loads `url` in a fresh context (empty cache) and adds up what was transferred. */
export async function pageWeight(browser: Browser, url: string, cookies: Parameters<BrowserContext['addCookies']>[0] = []): Promise<PageWeight> {
  const context = await browser.newContext();
  try {
    await context.addCookies(cookies);
    const page = await context.newPage();
    const finished: Promise<void>[] = [];
    const requests: PageWeight['requests'] = [];
    page.on('requestfinished', (request) => {
      finished.push(
        request.sizes().then((s) => {
          if (request.resourceType() !== 'font') requests.push({ url: request.url(), type: request.resourceType(), bytes: s.responseBodySize + s.responseHeadersSize });
        }),
      );
    });
    await page.goto(url, { waitUntil: 'networkidle' });
    await Promise.all(finished);
    return { bytes: requests.reduce((sum, r) => sum + r.bytes, 0), requests };
  } finally {
    await context.close();
  }
}
