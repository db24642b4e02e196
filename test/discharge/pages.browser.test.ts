// The discharge pages in a real browser (Chromium): no axe-core violations on the queue, a referral with
// its forms (and with the NHS error summary shown), the board and the figures; the forms work without
// JavaScript; with JavaScript the queue updates itself when a referral changes, and says so when the
// session has ended. SQLite (both engines are covered by pages.test.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../support/server.ts';
import { assertAccessible, openBrowser, screenshot } from '../portal/browser.ts';
import { TEST_PASSWORD } from '../portal/portalServer.ts';
import { seedDischargePages } from './pagesSeed.ts';

describe('discharge pages in a browser', () => {
  let t: TestServer;
  let browser: Browser;
  let ids: Record<string, string>;
  const errors: string[] = [];

  before(async () => {
    [t, browser] = await Promise.all([startTestServer('sqlite', { CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600' }), openBrowser()]);
    ids = await seedDischargePages(t);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  const signedIn = async (username: string, javaScriptEnabled = true): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await browser.newContext({ javaScriptEnabled });
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${t.url}/sign-in`);
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    return { context, page };
  };

  it('council: the queue and a referral are accessible; an empty decision shows the error summary; the queue updates itself', async () => {
    const { context, page } = await signedIn('sam.social');
    await page.goto(`${t.url}/discharge/referrals`);
    await assertAccessible(page, 'referral queue');
    await screenshot(page, 'discharge-queue');
    await page.getByRole('link', { name: 'Alice Jones' }).click();
    await assertAccessible(page, 'referral');
    await page.getByRole('button', { name: 'Send response' }).click();
    assert.match(await page.title(), /^Error: /);
    await assertAccessible(page, 'referral with errors');
    await screenshot(page, 'discharge-referral-error');

    await page.goto(`${t.url}/discharge/referrals`);
    await page.waitForTimeout(500); // the event stream is open
    const referral = (await t.fhir.get(`ServiceRequest/${ids.alice}`)).body;
    await t.fhir.put(`ServiceRequest/${ids.alice}`, { ...referral, category: [...referral.category.slice(0, 1), { coding: [{ system: 'https://carebridge.example/fhir/CodeSystem/discharge-pathway', code: '2', display: 'Pathway 2: short-term bed-based recovery' }] }] });
    await page.getByText('Pathway 2: short-term bed-based recovery').waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#live-status').innerText(), /^Updated at/);
    await context.close();
  });

  it('council: when the session ends in another tab, the open queue goes to the sign-in page instead of staying on screen', async () => {
    const { context, page } = await signedIn('sam.social');
    await page.goto(`${t.url}/discharge/referrals`);
    await page.waitForTimeout(500); // the event stream is open
    const other = await context.newPage();
    await other.goto(`${t.url}/discharge/referrals`);
    await other.getByRole('button', { name: 'Sign out' }).click();
    await other.waitForURL(/\/sign-in/);
    const referral = (await t.fhir.get(`ServiceRequest/${ids.alice}`)).body;
    await t.fhir.put(`ServiceRequest/${ids.alice}`, { ...referral, note: [{ text: 'Changed after sign-out' }] });
    await page.waitForURL((u) => u.pathname === '/sign-in', { timeout: 10_000 });
    assert.match(await page.locator('main').innerText(), /Your session has ended/);
    assert.equal(await page.getByText('Alice').count(), 0, 'no one from the queue is left on screen');
    await assertAccessible(page, 'sign-in after the queue\'s session ended');
    await context.close();
  });

  it('council, without JavaScript: accepting a referral works', async () => {
    const { context, page } = await signedIn('sam.social', false);
    await page.goto(`${t.url}/discharge/referrals/${ids.alice}`);
    await page.getByLabel('Accept the referral').check();
    await page.getByRole('button', { name: 'Send response' }).click();
    await page.getByText('Your decision was saved').waitFor();
    await context.close();
  });

  it('hospital: the board, the figures and a referral\'s forms are accessible; the medically ready date can be entered by keyboard', async () => {
    const { context, page } = await signedIn('cath.coord');
    await page.goto(`${t.url}/discharge/board`);
    await assertAccessible(page, 'discharge board');
    await screenshot(page, 'discharge-board');
    await page.goto(`${t.url}/discharge/metrics`);
    await assertAccessible(page, 'discharge figures');
    await screenshot(page, 'discharge-figures');
    // The coordinator's referral page, keyboard only: the medically ready date, with an error shown first.
    await page.goto(`${t.url}/discharge/referrals/${ids.cora}`);
    await assertAccessible(page, 'referral (hospital)');
    await page.getByRole('button', { name: 'Save medically ready date' }).focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/medically-ready$/);
    assert.match(await page.title(), /^Error: /);
    await assertAccessible(page, 'referral (hospital) with errors');
    await page.locator('#ready-day').focus();
    await page.keyboard.type('4');
    await page.keyboard.press('Tab');
    await page.keyboard.type('1');
    await page.keyboard.press('Tab');
    await page.keyboard.type('2026');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByText('The medically ready date was saved').waitFor();
    await screenshot(page, 'discharge-referral-hospital');
    await page.goto(`${t.url}/hospital/patients/dora`);
    await page.getByRole('link', { name: 'Refer for care and support after discharge' }).click();
    await assertAccessible(page, 'new referral');
    await page.getByRole('button', { name: 'Send referral' }).click();
    await page.locator('.nhsuk-error-summary').waitFor();
    assert.match(await page.title(), /^Error: /);
    await assertAccessible(page, 'new referral with errors');
    await screenshot(page, 'discharge-new-referral-errors');
    await context.close();
    assert.deepEqual(errors, [], 'no script errors or refused scripts');
  });
});
