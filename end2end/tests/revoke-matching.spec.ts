import { test, expect, Browser, Page, TestInfo } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { PASSWORD, ready, screenshotsEverywhere, signIn, signUp, uniqueName, usesJavaScript } from "./helpers";

async function browserFrom(browser: Browser, info: TestInfo, ip: string): Promise<Page> {
  const context = await browser.newContext({
    javaScriptEnabled: usesJavaScript(info),
    extraHTTPHeaders: { "X-Forwarded-For": ip },
    viewport: { width: 1280, height: 900 },
  });
  return context.newPage();
}

function createStaff(username: string) {
  execFileSync(process.env.E2E_BINARY!, ["createsuperuser", "--username", username], {
    env: {
      ...process.env,
      DATABASE_URL: process.env.E2E_DATABASE_URL!,
      CONSOLE_SESSIONS_SUPERUSER_PASSWORD: PASSWORD,
      RUST_LOG: "warn",
    },
  });
}

test("staff sign out every session matching a search", async ({ browser }, info) => {
  // A sign-up and two sign-ins, each a deliberate argon2 hash, and a job: room on a busy machine.
  test.setTimeout(90_000);
  const staffName = uniqueName("staff", info);
  createStaff(staffName);

  // One person, signed in on two browsers.
  const username = uniqueName("matched", info);
  const first = await browserFrom(browser, info, "198.51.100.21");
  const second = await browserFrom(browser, info, "198.51.100.22");
  await signUp(first, info, username);
  await signIn(second, info, username);

  const staff = await browserFrom(browser, info, "192.0.2.60");
  await signIn(staff, info, staffName);
  await staff.goto(`/admin/sessions?q=${encodeURIComponent(username)}`);
  await ready(staff, info);
  await expect(staff.getByTestId("result-count")).toHaveText("2 sessions");
  await expect(staff.getByTestId("admin-row")).toHaveCount(2);

  await staff.getByTestId("sign-out-matching").click();
  await expect(staff).toHaveURL(/\/admin\/sessions\/sign-out-matching\?/);
  await ready(staff, info);
  await expect(staff.getByTestId("matching-count")).toHaveText("2 sessions");
  if (usesJavaScript(info)) await screenshotsEverywhere(staff, "admin-sign-out-matching");

  await staff.getByTestId("confirm-sign-out-matching").click();
  await expect(staff).toHaveURL(/\/admin\/jobs\/[^/?#]+$/);
  // Without JavaScript the page reloads itself (a refresh in <noscript>) until the job ends.
  const job = staff.getByTestId("job");
  await expect(job).toHaveAttribute("data-state", "finished", { timeout: 15_000 });
  await expect(staff.getByTestId("job-status")).toContainText("Done: 2 sessions signed out.");
  if (usesJavaScript(info)) {
    await ready(staff, info);
    await screenshotsEverywhere(staff, "admin-job-finished");
  }

  // Both of the person's browsers are signed out; staff stay signed in.
  for (const page of [first, second]) {
    await page.reload();
    await expect(page).toHaveURL(/\/sign-in\?next=%2Faccount%2Fsessions&ended=1$/);
  }

  await staff.goto(`/admin/history?q=${encodeURIComponent(username)}`);
  await ready(staff, info);
  const rows = staff.getByTestId("history-row");
  await expect(rows).toHaveCount(2);
  await expect(staff.locator("[data-testid='history-row'][data-reason='staff']")).toHaveCount(2);
  if (usesJavaScript(info)) await screenshotsEverywhere(staff, "admin-history");
});
