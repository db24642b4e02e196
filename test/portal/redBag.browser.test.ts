// The red bag journey in a real browser at tablet size (768 × 1024, touch): a care worker sends a
// resident's red bag from their page, the ward nurse opens it and acknowledges. Every page has no axe-core
// violations; screenshots go to test-artifacts/portal/. SQLite (both engines: redBag.test.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext } from 'playwright-core';
import { assertAccessible, openBrowser, screenshot } from './browser.ts';
import { CARE_HOME_CARER, TEST_PASSWORD, startPortalServer, type PortalTestServer, type TestPerson } from './portalServer.ts';

const NURSE: TestPerson = { username: 'test.nurse', name: 'Nora Nurse', organisation: 'RX9', role: 'ward-nurse' };
const TABLET = { viewport: { width: 768, height: 1024 }, hasTouch: true, isMobile: true };

describe('red bag in a browser, on a tablet', () => {
  let t: PortalTestServer;
  let browser: Browser;
  before(async () => ([t, browser] = await Promise.all([startPortalServer('sqlite'), openBrowser()])));
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  const signedIn = async (person: TestPerson): Promise<BrowserContext> => {
    await t.addPerson(person);
    const context = await browser.newContext(TABLET);
    const page = await context.newPage();
    await page.goto(t.url + '/sign-in');
    await page.getByLabel('Username').fill(person.username);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    return context;
  };

  it('a care worker sends a red bag in a few taps; the ward sees and acknowledges it', async () => {
    const home = await signedIn(CARE_HOME_CARER);
    const page = await home.newPage();
    const started = Date.now();
    await page.goto(`${t.url}/care-home/residents/demo-pat-vm101-03`);
    await page.getByRole('link', { name: 'Send to hospital (red bag)' }).click();
    await assertAccessible(page, 'red bag start');
    await screenshot(page, 'red-bag-start');
    await page.getByRole('button', { name: 'Send red bag to hospital' }).click();
    assert.match(await page.title(), /^Error: /, 'missing items listed first');
    await assertAccessible(page, 'red bag start with errors');
    await page.getByLabel('Northshire Hospitals NHS Foundation Trust').check();
    await page.getByLabel('Reason for transfer').fill('Fall at 06:10 with new confusion; GP advised hospital.');
    await page.getByLabel('Glasses').check();
    await page.getByLabel('Hearing aids').check();
    await page.getByLabel('I confirm this pack is accurate').check();
    await page.getByRole('button', { name: 'Send red bag to hospital' }).click();
    await page.waitForURL(/\/red-bag\/[^/]+\?sent=1$/);
    assert.ok(Date.now() - started < 60_000, 'sent in under a minute');
    assert.match(await page.locator('main').innerText(), /Red bag sent to Northshire Hospitals NHS Foundation Trust/);
    await assertAccessible(page, 'red bag status (home)');
    await screenshot(page, 'red-bag-sent');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 768, `no sideways scrolling on a tablet (${width}px)`);

    const ward = await signedIn(NURSE);
    const nurse = await ward.newPage();
    await nurse.goto(`${t.url}/red-bag`);
    await assertAccessible(nurse, 'incoming red bags');
    await screenshot(nurse, 'red-bag-incoming');
    await nurse.locator('main a[href^="/red-bag/"]').first().click();
    await nurse.getByRole('button', { name: 'Acknowledge: the pack has arrived' }).click();
    assert.match(await nurse.locator('main').innerText(), /Recorded: Acknowledge/);
    assert.match(await nurse.locator('main').innerText(), /Received by the hospital/);
    await assertAccessible(nurse, 'red bag status (ward)');
    await screenshot(nurse, 'red-bag-acknowledged');
  });
});
