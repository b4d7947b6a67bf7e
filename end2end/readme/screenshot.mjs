// By hand, not a test: the README's screenshots of the devices page, with real places.
// Serve the app first on port 3223 with a GeoIP City database and 127.0.0.1 as a trusted proxy, e.g.
//   GEOIP_PATH=../shared/geoip/GeoIP2-City-Test.mmdb TRUSTED_PROXIES=127.0.0.1/32 \
//   LEPTOS_SITE_ADDR=127.0.0.1:3223 DATABASE_URL=sqlite:///tmp/readme.db target/debug/console-sessions
// then, from end2end/: node readme/screenshot.mjs
import { chromium } from "@playwright/test";

const base = process.env.BASE_URL ?? "http://127.0.0.1:3223";
const none = { brands: [], fullVersionList: [], platform: "", platformVersion: "", architecture: "", model: "" };
const devices = [
  {
    ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ip: "81.2.69.142",
    meta: { ...none, brands: [{ brand: "Google Chrome", version: "131" }, { brand: "Chromium", version: "131" }], platform: "macOS", platformVersion: "15.1.0", architecture: "x86", mobile: false },
  },
  {
    ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
    ip: "89.160.20.112",
    meta: { ...none, mobile: true },
  },
  { ua: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", ip: "216.160.83.56", meta: { ...none, mobile: false } },
];

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
const pages = [];
for (const [i, d] of devices.entries()) {
  const context = await browser.newContext({ userAgent: d.ua, extraHTTPHeaders: { "X-Forwarded-For": d.ip } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("Emulation.setUserAgentOverride", { userAgent: d.ua, userAgentMetadata: d.meta });
  await page.goto(base + (i === 0 ? "/sign-up" : "/sign-in"));
  await page.getByLabel("Username").fill("ada");
  if (i === 0) {
    await page.getByLabel("Password", { exact: true }).fill("correct horse battery");
    await page.getByLabel("Repeat the password").fill("correct horse battery");
    await page.getByTestId("sign-up").click();
  } else {
    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByTestId("sign-in").click();
  }
  await page.waitForURL(/account\/sessions/);
  pages.push(page);
}
const main = pages[0];
await main.setViewportSize({ width: 1000, height: 900 });
await main.reload();
await main.screenshot({ path: "readme/devices.png", fullPage: true });
await main.emulateMedia({ colorScheme: "dark" });
await main.setViewportSize({ width: 390, height: 900 });
await main.screenshot({ path: "readme/devices-phone-dark.png", fullPage: true });
await browser.close();
