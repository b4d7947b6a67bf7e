import { test, expect, Browser, Page, TestInfo } from "@playwright/test";
import { execFileSync } from "node:child_process";
import {
  PASSWORD,
  ready,
  screenshot,
  screenshotsEverywhere,
  signIn,
  signUp,
  uniqueName,
  usesJavaScript,
} from "./helpers";

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

test("staff search by address, sign out two sessions, and their browsers are signed out", async ({ browser }, info) => {
  // Five sign-ups and sign-ins, each a deliberate argon2 hash: give the flow room on a busy machine.
  test.setTimeout(120_000);
  const js = info.project.name;
  const staffName = uniqueName("staff", info);
  createStaff(staffName);
  // Two people on one office network (a /24 unique to this run), and one elsewhere.
  const net = `10.${Math.floor(Math.random() * 200) + 20}.${Math.floor(Math.random() * 250)}`;
  const alice = await browserFrom(browser, info, `${net}.11`);
  const bob = await browserFrom(browser, info, `${net}.12`);
  const carol = await browserFrom(browser, info, "198.51.100.7");
  await signUp(alice, info, uniqueName("alice", info));
  await signUp(bob, info, uniqueName("bob", info));
  await signUp(carol, info, uniqueName("carol", info));

  const staff = await browserFrom(browser, info, "192.0.2.50");
  await signIn(staff, info, staffName);
  await staff.getByRole("link", { name: "Admin" }).click();
  await expect(staff).toHaveURL(/\/admin\/sessions$/);
  await ready(staff, info);

  await staff.getByTestId("admin-search").fill(`${net}.0/24`);
  await staff.getByRole("button", { name: "Search" }).click();
  await expect(staff.getByTestId("result-count")).toHaveText("2 sessions");
  const rows = staff.getByTestId("admin-row");
  await expect(rows).toHaveCount(2);
  await expect(rows.filter({ hasText: `${net}.11` })).toHaveCount(1);
  await expect(rows.filter({ hasText: `${net}.12` })).toHaveCount(1);
  await screenshot(staff, `admin-search-${js}`);
  // On a phone the table scrolls inside its frame; the page itself never scrolls sideways.
  await staff.setViewportSize({ width: 375, height: 812 });
  await staff.emulateMedia({ colorScheme: "dark" });
  await screenshot(staff, `admin-search-phone-dark-${js}`);
  const overflow = await staff.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  expect(overflow).toBe(false);
  await staff.emulateMedia({ colorScheme: "light" });
  await staff.setViewportSize({ width: 1280, height: 720 });

  await rows.nth(0).getByRole("checkbox").check();
  await rows.nth(1).getByRole("checkbox").check();
  await staff.getByTestId("sign-out-selected").click();
  await expect(staff).toHaveURL(/\/admin\/sessions\/confirm\?/);
  await expect(staff.getByTestId("confirm-list").locator("li")).toHaveCount(2);
  await screenshot(staff, `admin-confirm-${js}`);
  await ready(staff, info);
  await staff.getByTestId("confirm-sign-out-selected").click();
  await expect(staff).toHaveURL(/\/admin\/sessions\?ended=2$/);
  await expect(staff.getByTestId("notice")).toHaveText("2 sessions were signed out.");

  for (const page of [alice, bob]) {
    await page.reload();
    await expect(page).toHaveURL(/\/sign-in\?next=%2Faccount%2Fsessions&ended=1$/);
  }
  await carol.reload();
  await expect(carol).toHaveURL(/\/account\/sessions$/);

  await staff.goto("/admin/audit");
  await expect(staff.getByTestId("audit-log")).toContainText(staffName);
  await expect(staff.getByTestId("audit-log")).toContainText("192.0.2.50");
  await screenshot(staff, `admin-audit-${js}`);

  // Users (with "Send reset link" and "Set password") and the outbox.
  await staff.goto("/admin/users");
  await expect(staff.getByTestId("set-password").first()).toBeVisible();
  await staff.goto("/admin/mail?state=all");
  await expect(staff.getByTestId("mail-counts")).toContainText("Failed (");
  if (usesJavaScript(info)) {
    await staff.goto("/admin/users");
    await screenshotsEverywhere(staff, "admin-users");
    await staff.goto("/admin/mail?state=all");
    await screenshotsEverywhere(staff, "admin-mail");
  }
});

test("people who are not staff get 403 from the admin", async ({ browser }, info) => {
  const page = await browserFrom(browser, info, "198.51.100.9");
  await signUp(page, info, uniqueName("plain", info));
  const response = await page.goto("/admin/sessions");
  expect(response?.status()).toBe(403);
  await expect(page.getByTestId("page-error")).toContainText("You do not have permission");
});
