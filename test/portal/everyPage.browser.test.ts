// Every page of the portal, for every role, in a real browser (Chromium): each page a role reaches from
// its header links, and the first record, referral or red bag those pages link to, has no axe-core
// violations and weighs under 150 KB transferred (compressed, fonts excluded). So do the pages around
// them: choosing a role, the general home page, and "not allowed" and "not found" answers. A new page
// added to a role's header is checked here without anyone remembering to. SQLite, demo data.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { addUser } from '../../src/access/index.ts';
import { assertAccessible, openBrowser, pageWeight } from './browser.ts';
import {
  ADMIN, BROKER, CARE_HOME_CARER, PRIVACY_OFFICER, SOCIAL_WORKER, TEST_PASSWORD, WARD_NURSE, startPortalServer, type PortalTestServer, type TestPerson,
} from './portalServer.ts';

const BUDGET_BYTES = 150 * 1024;
const COORDINATOR: TestPerson = { username: 'test.coordinator', name: 'Test Coordinator', organisation: 'RX9', role: 'discharge-coordinator' };
const GP: TestPerson = { username: 'test.gp', name: 'Test GP', organisation: 'Y01234', role: 'gp', fhirUser: 'Practitioner/demo-prac-y01234-gp' };
const CARER: TestPerson = { username: 'test.family', name: 'Test Family Carer', role: 'carer', fhirUser: 'RelatedPerson/demo-rp-vm101-01-nok' };
const SELF: TestPerson = { username: 'test.self', name: 'Sam Self', role: 'person', fhirUser: 'Patient/demo-pat-vm101-04' };
/** Links inside these pages that lead to one more page worth checking (a record, a referral, a red bag). */
const DEEPER = /^\/(care-home\/residents|hospital\/patients|council\/people|gp\/patients|carer\/people|discharge\/referrals|red-bag)\/[^/?#]+$/;

describe('every page, every role, in a browser', () => {
  let t: PortalTestServer;
  let browser: Browser;
  const checked: string[] = [];

  before(async () => {
    [t, browser] = await Promise.all([startPortalServer('sqlite'), openBrowser()]);
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  const signedIn = async (person: TestPerson): Promise<{ context: BrowserContext; page: Page }> => {
    await t.addPerson(person);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.url}/sign-in`);
    await page.getByLabel('Username').fill(person.username);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => !u.pathname.startsWith('/sign-in'));
    return { context, page };
  };

  const check = async (context: BrowserContext, page: Page, path: string, label: string, status = 200) => {
    const answer = await page.goto(t.url + path);
    assert.equal(answer?.status(), status, `${label}: ${path}`);
    await assertAccessible(page, `${label} ${path}`);
    const weight = await pageWeight(browser, t.url + path, (await context.cookies()).filter((c) => c.name === 'carebridge_session'));
    assert.ok(weight.bytes < BUDGET_BYTES, `${label} ${path}: ${weight.bytes} bytes`);
    checked.push(`${label} ${path}`);
  };

  const headerLinks = async (page: Page) => page.locator('nav[aria-label="Your pages"] a').evaluateAll((links) => links.map((a) => a.getAttribute('href')!));
  const firstDeeperLink = async (page: Page) => (await page.locator('main a').evaluateAll((links) => links.map((a) => a.getAttribute('href') ?? ''))).find((href) => DEEPER.test(href));

  for (const person of [CARE_HOME_CARER, WARD_NURSE, COORDINATOR, SOCIAL_WORKER, BROKER, PRIVACY_OFFICER, ADMIN, SELF, GP, CARER]) {
    it(`${person.role}: every header page, and the first record each lists`, async () => {
      const { context, page } = await signedIn(person);
      const links = await headerLinks(page);
      assert.ok(links.length >= 1, `${person.role} has header links`);
      for (const href of links) {
        await check(context, page, href, person.role);
        const deeper = await firstDeeperLink(page);
        if (deeper) await check(context, page, deeper, person.role);
      }
      await context.close();
    });
  }

  it('the pages around them: choosing a role, the general home page, not allowed, not found', async () => {
    await addUser(t.driver, { username: 'test.two-roles', name: 'Two Roles', password: TEST_PASSWORD, memberships: [{ organisation: 'RX9', role: 'ward-nurse' }, { organisation: 'RX9', role: 'discharge-coordinator' }] });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${t.url}/sign-in`);
    await page.getByLabel('Username').fill('test.two-roles');
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/sign-in\/choose/);
    await assertAccessible(page, 'choose a role');
    checked.push('choose a role');
    await context.close();

    const gp = await signedIn(GP);
    await check(gp.context, gp.page, '/home', 'general home page');
    await check(gp.context, gp.page, '/admin/users', 'gp (not allowed)', 403);
    await check(gp.context, gp.page, '/care-home/residents/no-such-person', 'gp (not allowed)', 403);
    await gp.context.close();
    const carer = await signedIn(CARE_HOME_CARER);
    await check(carer.context, carer.page, '/care-home/residents/no-such-person', 'care home (not found)', 404);
    await check(carer.context, carer.page, '/red-bag/no-such-task', 'care home (not found)', 404);
    await carer.context.close();
    assert.ok(checked.length >= 30, `pages checked: ${checked.length}\n${checked.join('\n')}`);
  });
});
