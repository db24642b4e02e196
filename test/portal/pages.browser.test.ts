// The portal in a real browser (Chromium): every page has no axe-core accessibility violations, works
// with JavaScript off, can be used from the keyboard, and stays under 150 KB transferred (compressed,
// fonts excluded). Screenshots of each journey's key page go to test-artifacts/portal/. One browser for
// the file; SQLite (storage is covered on both engines by careHome.test.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assertAccessible, openBrowser, pageWeight, screenshot } from './browser.ts';
import { CARE_HOME_CARER, PRIVACY_OFFICER, TEST_PASSWORD, startPortalServer, type PortalTestServer, type TestPerson } from './portalServer.ts';

const BUDGET_BYTES = 150 * 1024;

describe('portal pages in a browser', () => {
  let t: PortalTestServer;
  let browser: Browser;
  let withJs: BrowserContext;
  let noJs: BrowserContext;
  let page: Page;
  let plain: Page;
  const consoleErrors: string[] = [];

  before(async () => {
    [t, browser] = await Promise.all([startPortalServer('sqlite'), openBrowser()]);
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

  /** Signs `person` in through the sign-in form in `context` (a signed-in context is sent on from /sign-in). */
  const signInBrowser = async (context: BrowserContext, person: TestPerson = CARE_HOME_CARER) => {
    await t.addPerson(person);
    const tab = await context.newPage();
    await tab.goto(t.url + '/sign-in');
    if (new URL(tab.url()).pathname === '/sign-in') {
      await tab.getByLabel('Username').fill(person.username);
      await tab.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
      await tab.getByRole('button', { name: 'Sign in' }).click();
      await tab.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    }
    await tab.close();
  };
  const sessionCookie = async () => (await withJs.cookies()).filter((c) => c.name === 'carebridge_session');

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
    const weight = await pageWeight(browser, t.url + '/care-home', await sessionCookie());
    assert.ok(weight.bytes < BUDGET_BYTES, `residents page ${weight.bytes} bytes`);
  });

  it('care home: a resident’s summary is accessible and under budget', async () => {
    await page.goto(t.url + '/care-home/residents/demo-pat-vm101-01');
    await assertAccessible(page, 'resident summary');
    await screenshot(page, 'care-home-resident');
    const weight = await pageWeight(browser, t.url + '/care-home/residents/demo-pat-vm101-01', await sessionCookie());
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

  it('break-glass: a carer opens a resident of another home, breaks the glass, and sees the warning; a privacy officer reviews the alert', async () => {
    await signInBrowser(withJs);
    const outsider = 'demo-pat-vm102-01';
    await page.goto(`${t.url}/care-home/residents/${outsider}`);
    assert.equal(await page.locator('h1').innerText(), 'You do not have a care relationship with this person');
    await assertAccessible(page, 'break-glass prompt');
    await page.getByLabel('Explain why').fill('Too short');
    await page.getByRole('button', { name: 'Break the glass and view the record' }).click();
    assert.equal(await page.title(), 'Error: You do not have a care relationship with this person – CareBridge');
    assert.match(await page.locator('.nhsuk-error-summary').innerText(), /Select why you need to see this record\s+Explain why in at least 10 characters/);
    assert.equal(await page.getByLabel('Explain why').inputValue(), 'Too short', 'what was typed is kept');
    await assertAccessible(page, 'break-glass prompt with errors');
    await screenshot(page, 'break-glass-prompt');
    await page.getByLabel('Emergency care', { exact: false }).check();
    await page.getByLabel('Explain why').fill('Found on the floor at the day centre; their home asked us to help');
    await page.getByRole('button', { name: 'Break the glass and view the record' }).click();
    await page.waitForURL(`${t.url}/care-home/residents/${outsider}`);
    const banner = await page.locator('.nhsuk-card--warning').innerText();
    assert.match(banner, /You are viewing this record using break-glass: Found on the floor at the day centre; their home asked us to help, until \d+ \w+ \d{4} at \d\d:\d\d/);
    assert.ok(await page.getByRole('heading', { name: 'Personal details' }).isVisible(), 'the record is shown');
    await assertAccessible(page, 'record under break-glass');
    await screenshot(page, 'break-glass-record');
    await page.goto(`${t.url}/care-home/residents/${outsider}/news2`);
    assert.match(await page.locator('.nhsuk-card--warning').innerText(), /using break-glass/);

    const officer = await browser.newContext();
    try {
      await signInBrowser(officer, PRIVACY_OFFICER);
      const po = await officer.newPage();
      await po.goto(t.url + '/');
      await po.waitForURL(`${t.url}/privacy-officer`);
      const row = po.locator('tbody tr', { hasText: outsider });
      assert.match(await row.innerText(), /Test Carer\s+Care home staff\s+VM101\s+demo-pat-vm102-01\s+Emergency care: the person needs care now\s+Found on the floor/);
      await assertAccessible(po, 'privacy officer page');
      await screenshot(po, 'privacy-officer-alerts');
      const card = po.locator('.nhsuk-card', { hasText: 'Was this access appropriate?' });
      await card.getByLabel('Appropriate', { exact: true }).check();
      await card.getByLabel('Note').fill('Checked with the day centre manager');
      await card.getByRole('button', { name: 'Save review' }).click();
      assert.match(await po.locator('.nhsuk-notification-banner').innerText(), /Review saved/);
      assert.match(await po.locator('main').innerText(), /There are no break-glass alerts waiting for review/);
      assert.match(await po.locator('tbody tr', { hasText: outsider }).innerText(), /Appropriate: Checked with the day centre manager\s+Pat Privacy/);
      await assertAccessible(po, 'privacy officer page after a review');
      await screenshot(po, 'privacy-officer-reviewed');
      // The audit shows the break-glass, under its purpose, for that person.
      await po.getByRole('link', { name: 'Search the audit trail' }).click();
      await po.getByLabel('Person’s record id').fill(outsider);
      await po.getByRole('button', { name: 'Search the audit' }).click();
      for (let i = 0; i < 30 && !(await po.locator('main').innerText()).includes('Break-glass'); i++) {
        await new Promise((r) => setTimeout(r, 200)); // the audit is written in batches
        await po.reload();
      }
      assert.match(await po.locator('tbody').innerText(), /Break-glass/);
      await assertAccessible(po, 'audit search results');
      await screenshot(po, 'privacy-officer-audit');
    } finally {
      await officer.close();
    }
  });

  it('loads no script or style the Content-Security-Policy refuses', async () => {
    const res = await fetch(t.url + '/sign-in');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /style-src 'self'/);
    assert.deepEqual(consoleErrors, []);
  });
});
