// The portal in a real browser (Chromium): every page has no axe-core accessibility violations, works
// with JavaScript off, can be used from the keyboard, and stays under 150 KB transferred (compressed,
// fonts excluded). Screenshots of each journey's key page go to test-artifacts/portal/. One browser for
// the file; SQLite (storage is covered on both engines by careHome.test.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assertAccessible, openBrowser, pageWeight, screenshot } from './browser.ts';
import { CARE_HOME_CARER, startPortalServer, type PortalTestServer } from './portalServer.ts';

const BUDGET_BYTES = 150 * 1024;

describe('portal pages in a browser', () => {
  let t: PortalTestServer;
  let browser: Browser;
  let withJs: BrowserContext;
  let noJs: BrowserContext;
  let page: Page;
  let plain: Page;
  let session: { id: string; cookie: string };
  const consoleErrors: string[] = [];

  before(async () => {
    [t, browser] = await Promise.all([startPortalServer('sqlite'), openBrowser()]);
    session = t.sessionFor(CARE_HOME_CARER);
    withJs = await browser.newContext();
    noJs = await browser.newContext({ javaScriptEnabled: false });
    page = await withJs.newPage();
    plain = await noJs.newPage();
    // Forms answered 400 show as failed loads in the console; what must never appear is a CSP refusal or a script error.
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  const signInBrowser = async (context: BrowserContext) => context.addCookies([{ name: 'carebridge_session', value: session.id, url: t.url }]);
  const sessionCookie = () => [{ name: 'carebridge_session', value: session.id, url: t.url }];

  it('start page: accessible, under budget, and leads to sign-in without JavaScript', async () => {
    await page.goto(t.url + '/');
    assert.equal(await page.title(), 'Shared care record – CareBridge');
    await assertAccessible(page, 'start page');
    await screenshot(page, 'start');
    await plain.goto(t.url + '/');
    await plain.getByRole('button', { name: 'Sign in' }).click();
    assert.equal(await plain.title(), 'Sign in – CareBridge');
    const weight = await pageWeight(browser, t.url + '/');
    assert.ok(weight.bytes < BUDGET_BYTES, `start page ${weight.bytes} bytes`);
  });

  it('sign-in page: accessible, with the error summary when nothing is entered (JavaScript off)', async () => {
    await page.goto(t.url + '/sign-in');
    await assertAccessible(page, 'sign-in page');
    await plain.goto(t.url + '/sign-in');
    await plain.getByLabel('Username').fill('someone');
    await plain.getByRole('button', { name: 'Sign in' }).click();
    assert.equal(await plain.title(), 'Error: Sign in – CareBridge');
    assert.equal(await plain.getByLabel('Username').inputValue(), 'someone', 'what was typed is kept');
    await plain.getByRole('link', { name: 'Enter your password' }).click();
    await page.goto(t.url + '/sign-in');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('.nhsuk-error-summary');
    assert.ok(await page.evaluate(() => document.activeElement?.closest('.nhsuk-error-summary') !== null), 'with JavaScript the error summary takes focus');
    await assertAccessible(page, 'sign-in page with errors');
    await screenshot(page, 'sign-in-errors');
    const weight = await pageWeight(browser, t.url + '/sign-in');
    assert.ok(weight.bytes < BUDGET_BYTES, `sign-in page ${weight.bytes} bytes`);
  });

  it('care home: residents list and search work from the keyboard, accessible and under budget', async () => {
    await signInBrowser(withJs);
    await page.goto(t.url + '/care-home');
    assert.equal(await page.title(), 'Residents – CareBridge');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Skip to main content');
    await page.keyboard.press('Enter');
    await page.getByLabel('Search by name or NHS number').focus();
    await page.keyboard.type('Wright');
    await page.keyboard.press('Enter');
    await page.waitForURL(/q=Wright/);
    assert.ok((await page.locator('tbody tr').count()) >= 1);
    await page.goto(t.url + '/care-home');
    await assertAccessible(page, 'residents list');
    await screenshot(page, 'care-home-residents');
    const weight = await pageWeight(browser, t.url + '/care-home', sessionCookie());
    assert.ok(weight.bytes < BUDGET_BYTES, `residents page ${weight.bytes} bytes`);
  });

  it('care home: a resident’s summary is accessible and under budget', async () => {
    await page.goto(t.url + '/care-home/residents/demo-pat-vm101-01');
    await assertAccessible(page, 'resident summary');
    await screenshot(page, 'care-home-resident');
    const weight = await pageWeight(browser, t.url + '/care-home/residents/demo-pat-vm101-01', sessionCookie());
    assert.ok(weight.bytes < BUDGET_BYTES, `resident summary ${weight.bytes} bytes`);
  });

  it('care home: NEWS2 entry works without JavaScript, shows its errors accessibly, and records the score', async () => {
    await signInBrowser(noJs);
    await plain.goto(t.url + '/care-home/residents/demo-pat-vm101-06/news2');
    await plain.getByLabel('Respiration rate').fill('30');
    await plain.getByRole('button', { name: 'Save and calculate NEWS2' }).click();
    assert.match(await plain.title(), /^Error: Record NEWS2 observations for .+ – CareBridge$/);
    assert.equal(await plain.getByLabel('Respiration rate').inputValue(), '30');
    await page.goto(plain.url());
    await assertAccessible(page, 'NEWS2 form');
    await plain.getByLabel('Oxygen saturation (SpO2)').fill('95');
    await plain.getByLabel('No, breathing air').check();
    await plain.getByLabel('Systolic blood pressure', { exact: false }).first().fill('120');
    await plain.getByLabel('Pulse').fill('80');
    await plain.getByLabel('A – Alert').check();
    await plain.getByLabel('Temperature').fill('37.1');
    await screenshot(plain, 'care-home-news2-form');
    await plain.getByRole('button', { name: 'Save and calculate NEWS2' }).click();
    // RR 30 → 3, SpO2 95 → 1, the rest 0: total 4 with a red score: low–medium.
    assert.match(await plain.locator('.nhsuk-notification-banner').innerText(), /score 4 \(low-medium clinical risk\)/);
    await page.goto(plain.url());
    await assertAccessible(page, 'resident summary after NEWS2');
    await screenshot(page, 'care-home-news2-recorded');
  });

  it('loads no script or style the Content-Security-Policy refuses', async () => {
    const res = await fetch(t.url + '/sign-in');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /style-src 'self'/);
    assert.deepEqual(consoleErrors, []);
  });
});
