import { test, expect } from "@playwright/test";
import { mkdirSync } from "node:fs";

const normal = "All systems normal: the database answers.";

test("home page renders on the server and its status check works", async ({ page }, info) => {
  await page.goto("/");
  await expect(page).toHaveTitle(/console-sessions/);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Your sessions, under control");
  await expect(page.getByTestId("status")).toHaveText(normal);
  await expect(page.getByTestId("checks")).toHaveText("Checked once");

  if (info.project.name === "javascript") {
    // Wait until the page is hydrated, so the click runs in the browser, not as a form submission.
    await page.locator("body[data-hydrated='true']").waitFor({ state: "attached" });
    await page.getByTestId("check-status").click();
    // Hydrated: the server is asked again in place, and the page changes without a reload.
    await expect(page.getByTestId("checks")).toHaveText("Checked 2 times");
    await expect(page.getByTestId("status")).toHaveText(normal);
    await expect(page).toHaveURL(/\/$/);
  } else {
    // Without JavaScript the form reloads the page, which the server renders with a fresh check.
    await page.getByTestId("check-status").click();
    await expect(page).toHaveURL(/\/\??$/);
    await expect(page.getByTestId("status")).toHaveText(normal);
    await expect(page.locator("body[data-hydrated]")).toHaveCount(0);
  }

  mkdirSync("screenshots", { recursive: true });
  await page.screenshot({ path: `screenshots/home-${info.project.name}.png`, fullPage: true });
});

test("health check reports the database", async ({ request }) => {
  const response = await request.get("/healthz");
  expect(response.status()).toBe(200);
  expect(await response.json()).toEqual({ status: "ok", database: "ok" });
});

test("unknown paths get a 404 page", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});

test("the page reads well on a phone", async ({ page }, info) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto("/");
  await expect(page.getByTestId("status")).toHaveText(normal);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  expect(overflow).toBe(false);
  mkdirSync("screenshots", { recursive: true });
  await page.screenshot({ path: `screenshots/home-phone-${info.project.name}.png`, fullPage: true });
});

// The Content-Security-Policy allows inline scripts only with the page's nonce: hydration, the
// streamed resources and every page's own script must run under it, and the browser must report
// no violation while pages load, hydrate and navigate.
test("pages hydrate under the content security policy with no violation", async ({ page }, info) => {
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  await page.exposeFunction("reportViolation", (text: string) => violations.push(text));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      (window as unknown as { reportViolation: (t: string) => void }).reportViolation(
        `${event.violatedDirective} ${event.blockedURI}`,
      );
    });
  });
  for (const path of ["/", "/sign-in", "/sign-up", "/no/such/page"]) {
    const response = await page.goto(path);
    expect(response?.headers()["content-security-policy"]).toContain("'nonce-");
    if (info.project.name === "javascript") {
      await page.locator("body[data-hydrated='true']").waitFor({ state: "attached" });
    }
  }
  expect(violations).toEqual([]);
});
