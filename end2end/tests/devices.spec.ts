import { test, expect, Browser, Page, TestInfo } from "@playwright/test";
import { PASSWORD, ready, screenshot, signIn, signUp, uniqueName, usesJavaScript } from "./helpers";

const DESKTOP_CHROME =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE_SAFARI =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1";

// The user-agent client hints a real browser with that user agent sends: Chrome its brands and
// platform, Safari none (sent as empty here). Without this the Chromium under test would send its
// own brand beside the overridden user agent.
const HINTS: Record<string, object> = {
  [DESKTOP_CHROME]: {
    brands: [
      { brand: "Google Chrome", version: "131" },
      { brand: "Chromium", version: "131" },
      { brand: "Not_A Brand", version: "24" },
    ],
    fullVersionList: [],
    platform: "macOS",
    platformVersion: "15.1.0",
    architecture: "x86",
    model: "",
    mobile: false,
  },
  [IPHONE_SAFARI]: {
    brands: [],
    fullVersionList: [],
    platform: "",
    platformVersion: "",
    architecture: "",
    model: "",
    mobile: true,
  },
};

async function browserAs(browser: Browser, info: TestInfo, userAgent: string): Promise<Page> {
  const context = await browser.newContext({ userAgent, javaScriptEnabled: usesJavaScript(info) });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Emulation.setUserAgentOverride", {
    userAgent,
    userAgentMetadata: HINTS[userAgent] as any,
  });
  return page;
}

test("a desktop signs out a phone, and the phone lands on sign-in", async ({ browser }, info) => {
  const username = uniqueName("devices", info);
  const js = info.project.name;
  const desktop = await browserAs(browser, info, DESKTOP_CHROME);
  const phone = await browserAs(browser, info, IPHONE_SAFARI);

  await signUp(desktop, info, username);
  await expect(desktop.getByTestId("session-count")).toHaveText("1 active session");
  await expect(desktop.getByTestId("only-this-device")).toBeVisible();

  await signIn(phone, info, username);
  await desktop.reload();
  await ready(desktop, info);
  const cards = desktop.getByTestId("session");
  await expect(cards).toHaveCount(2);
  await expect(desktop.getByTestId("session-count")).toHaveText("2 active sessions");
  // This browser is pinned on top, marked, and described from its user agent.
  await expect(cards.nth(0).getByTestId("this-device")).toBeVisible();
  await expect(cards.nth(0).getByTestId("session-summary")).toHaveText("Chrome 131 on macOS 15");
  await expect(cards.nth(0)).toContainText("Computer");
  await expect(cards.nth(1).getByTestId("this-device")).toHaveCount(0);
  await expect(cards.nth(1).getByTestId("session-summary")).toHaveText("Safari 18 on iPhone");
  await expect(cards.nth(1)).toContainText("Phone or tablet");
  await expect(cards.nth(1).getByTestId("session-ip")).toHaveText("127.0.0.1");

  await desktop.setViewportSize({ width: 1100, height: 760 });
  await screenshot(desktop, `devices-desktop-light-${js}`);
  await desktop.emulateMedia({ colorScheme: "dark" });
  await screenshot(desktop, `devices-desktop-dark-${js}`);
  await desktop.setViewportSize({ width: 375, height: 812 });
  await screenshot(desktop, `devices-phone-dark-${js}`);
  await desktop.emulateMedia({ colorScheme: "light" });
  await screenshot(desktop, `devices-phone-light-${js}`);
  const overflow = await desktop.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  expect(overflow).toBe(false);
  await desktop.setViewportSize({ width: 1100, height: 760 });

  // Sign the phone out, with a confirmation step.
  await desktop.evaluate(() => ((window as any).__sameDocument = true));
  await cards.nth(1).getByTestId("sign-out-session").click();
  await expect(cards.nth(1).getByText("Sign out Safari 18 on iPhone?")).toBeVisible();
  await cards.nth(1).getByTestId("confirm-sign-out").click();
  await expect(desktop.getByTestId("notice")).toHaveText("The session was signed out.");
  await expect(desktop.getByTestId("session")).toHaveCount(1);
  await expect(desktop.getByTestId("session-count")).toHaveText("1 active session");
  if (usesJavaScript(info)) {
    // Updated in place: still the same document.
    expect(await desktop.evaluate(() => (window as any).__sameDocument)).toBe(true);
  }

  // The phone's very next request lands on sign-in, with a word about why.
  await phone.reload();
  await expect(phone).toHaveURL(/\/sign-in\?next=%2Faccount%2Fsessions&ended=1$/);
  await expect(phone.getByTestId("notice")).toHaveText("Your session has ended. Please sign in again.");
  await screenshot(phone, `signed-out-phone-${js}`);
});

test("sign out all other devices keeps this one", async ({ browser }, info) => {
  const username = uniqueName("others", info);
  const main = await browserAs(browser, info, DESKTOP_CHROME);
  await signUp(main, info, username);
  const others: Page[] = [];
  for (const ua of [IPHONE_SAFARI, DESKTOP_CHROME]) {
    const other = await browserAs(browser, info, ua);
    await signIn(other, info, username);
    others.push(other);
  }
  await main.reload();
  await ready(main, info);
  await expect(main.getByTestId("session")).toHaveCount(3);
  await main.getByTestId("sign-out-others").click();
  await main.getByTestId("confirm-sign-out-others").click();
  await expect(main.getByTestId("notice")).toHaveText("2 sessions were signed out.");
  await expect(main.getByTestId("session")).toHaveCount(1);
  await expect(main.getByTestId("this-device")).toBeVisible();
  for (const other of others) {
    await other.reload();
    await expect(other).toHaveURL(/\/sign-in/);
  }
});

test("many sessions read well", async ({ browser, playwright }, info) => {
  const username = uniqueName("many", info);
  const main = await browserAs(browser, info, DESKTOP_CHROME);
  await signUp(main, info, username);
  // 50 more sign-ins from scripts with assorted user agents.
  const agents = [IPHONE_SAFARI, DESKTOP_CHROME, "curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"];
  const baseURL = info.project.use.baseURL!;
  for (let i = 0; i < 50; i++) {
    const api = await playwright.request.newContext({ baseURL, userAgent: agents[i % agents.length] });
    const viewer = await (await api.get("/api/account/viewer")).json();
    const response = await api.post("/api/account/sign-in", {
      form: { csrf_token: viewer.Ok?.csrf_token ?? viewer.csrf_token, username, password: PASSWORD, next: "" },
      headers: { Origin: baseURL },
      maxRedirects: 0,
    });
    expect(response.status()).toBeLessThan(400);
    await api.dispose();
  }
  await main.reload();
  await expect(main.getByTestId("session")).toHaveCount(51);
  await expect(main.getByTestId("session-count")).toHaveText("51 active sessions");
  await expect(main.getByTestId("session").nth(0).getByTestId("this-device")).toBeVisible();
  await main.setViewportSize({ width: 1100, height: 760 });
  await main.screenshot({ path: `screenshots/devices-many-${info.project.name}.png` });
});
