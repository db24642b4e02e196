// The hospital, council and administrator pages in a real browser (Chromium): no axe-core violations on
// any of them, keyboard-only journeys, each under 150 KB transferred (compressed, fonts excluded), and the
// ward list refreshing itself when a patient's NEWS2 is recorded elsewhere. SQLite (both engines are
// covered over HTTP by rolePages.test.ts and liveUpdates.test.ts). Screenshots go to test-artifacts/portal/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assertAccessible, openBrowser, pageWeight, screenshot } from './browser.ts';
import { ADMIN, BROKER, SOCIAL_WORKER, TEST_PASSWORD, WARD_NURSE, startPortalServer, type PortalTestServer, type TestPerson } from './portalServer.ts';

const BUDGET_BYTES = 150 * 1024;

describe('hospital, council and admin pages in a browser', () => {
  let t: PortalTestServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const consoleErrors: string[] = [];

  before(async () => {
    [t, browser] = await Promise.all([startPortalServer('sqlite'), openBrowser()]);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  /** A browser context signed in as `person` through the sign-in form, typing only. */
  const signedIn = async (person: TestPerson): Promise<{ context: BrowserContext; page: Page }> => {
    await t.addPerson(person);
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(t.url + '/sign-in');
    await page.getByLabel('Username').focus();
    await page.keyboard.type(person.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(TEST_PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    return { context, page };
  };
  const check = async (context: BrowserContext, page: Page, path: string, label: string) => {
    await page.goto(t.url + path);
    await assertAccessible(page, label);
    await screenshot(page, label.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
    const weight = await pageWeight(browser, t.url + path, (await context.cookies()).filter((c) => c.name === 'carebridge_session'));
    assert.ok(weight.bytes < BUDGET_BYTES, `${label}: ${weight.bytes} bytes`);
  };

  it('hospital: the ward list and a patient’s record are accessible and under budget; the keyboard reaches a patient', async () => {
    const { context, page } = await signedIn(WARD_NURSE);
    assert.equal(new URL(page.url()).pathname, '/hospital');
    await check(context, page, '/hospital', 'hospital ward list');
    const first = page.locator('tbody a').first();
    const name = await first.innerText();
    for (let i = 0; i < 40 && (await page.evaluate(() => document.activeElement?.closest('tbody') === null)); i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/hospital\/patients\//);
    assert.equal(await page.locator('h1').innerText(), name);
    await check(context, page, new URL(page.url()).pathname, 'hospital patient record');
  });

  it('hospital: the ward list refreshes itself when a patient’s NEWS2 is recorded elsewhere', async () => {
    const { page } = await signedIn(WARD_NURSE);
    await page.goto(t.url + '/hospital');
    const href = await page.locator('tbody a').first().getAttribute('href');
    const id = href!.split('/').pop()!;
    await page.waitForTimeout(1500); // the live stream has started listening
    await t.fhir('POST', 'Observation', [], {
      resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://snomed.info/sct', code: '1104051000000101' }], text: 'NEWS2 total' },
      subject: { reference: `Patient/${id}` }, effectiveDateTime: new Date().toISOString(), valueInteger: 19,
    });
    const row = page.locator('tbody tr', { has: page.locator(`a[href="${href}"]`) });
    await row.getByText('19 high').waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#live-status').innerText(), /List updated at \d\d:\d\d/);
    await assertAccessible(page, 'ward list after a live update');
  });

  it('hospital: signing out in another tab takes the ward list to the sign-in page, so the shared screen stops showing it', async () => {
    const { context, page } = await signedIn(WARD_NURSE);
    await page.goto(t.url + '/hospital');
    await page.waitForTimeout(1500); // the live stream has started listening
    const other = await context.newPage();
    await other.goto(t.url + '/hospital');
    await other.getByRole('button', { name: 'Sign out' }).click();
    await other.waitForURL((u) => u.pathname.startsWith('/sign-in'));
    await page.waitForURL((u) => u.pathname === '/sign-in', { timeout: 15_000 });
    assert.match(await page.locator('main').innerText(), /Your session has ended/);
    assert.equal(await page.locator('tbody a').count(), 0, 'no patient is listed');
  });

  it('council: the referrals and a person’s record, for a social worker and a broker, are accessible and under budget', async () => {
    const social = await signedIn(SOCIAL_WORKER);
    assert.equal(new URL(social.page.url()).pathname, '/council');
    await check(social.context, social.page, '/council', 'council referrals');
    const href = (await social.page.locator('tbody a').first().getAttribute('href'))!;
    await check(social.context, social.page, href, 'council person record');
    const broker = await signedIn(BROKER);
    await check(broker.context, broker.page, href, 'council person record for a broker');
    assert.match(await broker.page.locator('main').innerText(), /Not shown: your role does not give you access/);
  });

  it('admin: every page accessible and under budget; a user added from the keyboard, errors first', async () => {
    const { context, page } = await signedIn(ADMIN);
    assert.equal(new URL(page.url()).pathname, '/admin');
    for (const [path, label] of [['/admin', 'admin home'], ['/admin/users', 'admin users'], ['/admin/clients', 'admin clients'], ['/admin/organisations', 'admin organisations'], ['/admin/clients/new', 'admin new client'], ['/admin/organisations/new', 'admin new organisation']]) {
      await check(context, page, path, label);
    }
    await page.goto(t.url + '/admin/users/new');
    await assertAccessible(page, 'admin new user');
    await page.getByLabel('Username').focus();
    await page.keyboard.type('keyboard.user');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.nhsuk-error-summary');
    assert.equal(await page.title(), 'Error: Add a user – CareBridge');
    assert.equal(await page.getByLabel('Username').inputValue(), 'keyboard.user', 'what was typed is kept');
    await assertAccessible(page, 'admin new user with errors');
    await screenshot(page, 'admin-new-user-errors');
    await page.getByLabel('Full name').fill('Keyboard User');
    await page.locator('#organisation1').selectOption('RX9');
    await page.locator('#role1').selectOption('ward-nurse');
    await page.getByRole('button', { name: 'Add user' }).press('Enter');
    await page.waitForSelector('#new-password');
    assert.match(await page.locator('#added').innerText(), /User keyboard\.user added/);
    await assertAccessible(page, 'admin user added');
    await screenshot(page, 'admin-user-added');
  });

  it('loads no script the Content-Security-Policy refuses, and no script fails', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
