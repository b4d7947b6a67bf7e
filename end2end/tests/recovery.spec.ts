import { test, expect, Browser, Page, TestInfo } from "@playwright/test";
import {
  linkTo,
  PASSWORD,
  readMail,
  ready,
  screenshot,
  screenshotsEverywhere,
  signIn,
  uniqueName,
  usesJavaScript,
} from "./helpers";

const NEW_PASSWORD = "a brand new passphrase";
const FIREFOX_WINDOWS =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

/** A new account with an email address, signed in on `page`. */
async function signUpWithEmail(page: Page, info: TestInfo, username: string): Promise<string> {
  const email = `${username}@example.test`;
  await page.goto("/sign-up");
  await ready(page, info);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel(/^Email/).fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Repeat the password").fill(PASSWORD);
  await page.getByTestId("sign-up").click();
  await expect(page).toHaveURL(/\/account\/sessions$/);
  return email;
}

/** Another browser (its own cookies), with JavaScript as the project has it. */
async function otherBrowser(browser: Browser, info: TestInfo, userAgent?: string): Promise<Page> {
  const context = await browser.newContext({ javaScriptEnabled: usesJavaScript(info), userAgent });
  return context.newPage();
}

/** Whether `page` is still signed in: its devices page sends it to sign in when it is not. */
async function expectSignedOut(page: Page) {
  await page.goto("/account/sessions");
  await expect(page).toHaveURL(/\/sign-in\?next=/);
}

test("forgot password: the mailed link sets a new password and signs out every device", async ({ page, browser }, info) => {
  const js = info.project.name;
  const username = uniqueName("forgot", info);
  const email = await signUpWithEmail(page, info, username);
  const laptop = await otherBrowser(browser, info);
  await signIn(laptop, info, username);

  // From the sign-in page of a third browser.
  const stranger = await otherBrowser(browser, info);
  await stranger.goto("/sign-in");
  await ready(stranger, info);
  await stranger.getByTestId("forgot-password").click();
  await expect(stranger).toHaveURL(/\/forgot-password$/);
  await ready(stranger, info);
  const asked = Date.now() - 1000;
  await stranger.getByLabel("Username or email address").fill(email);
  await stranger.getByTestId("send-reset-link").click();
  await expect(stranger.getByTestId("notice")).toContainText("a link to choose a new password is on its way");
  await screenshot(stranger, `forgot-password-${js}`);

  const mail = await readMail(email, "Reset your password", asked);
  expect(mail.text).toContain(username);
  const link = linkTo(mail, "/reset-password?token=");
  await stranger.goto(link);
  // The token leaves the address bar before the page shows.
  await expect(stranger).toHaveURL(/\/reset-password$/);
  await expect(stranger.getByTestId("reset-username")).toHaveText(username);
  if (usesJavaScript(info)) await screenshotsEverywhere(stranger, "reset-password-form");
  await ready(stranger, info);
  await stranger.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await stranger.getByLabel("Repeat the new password").fill("not the same");
  await stranger.getByTestId("reset-password").click();
  await expect(stranger.getByTestId("form-error")).toHaveText("The two passwords do not match.");
  await screenshot(stranger, `reset-password-${js}`);
  await ready(stranger, info);
  await stranger.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await stranger.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
  await stranger.getByTestId("reset-password").click();
  await expect(stranger).toHaveURL(/\/sign-in\?reset=1$/);
  await expect(stranger.getByTestId("notice")).toContainText("every device was signed out");

  // Both old sessions are gone; the new password works, the old one does not.
  await expectSignedOut(page);
  await expectSignedOut(laptop);
  await signIn(stranger, info, username, NEW_PASSWORD);

  // The link worked once.
  const again = await otherBrowser(browser, info);
  await again.goto(link);
  await expect(again.getByTestId("dead-link")).toBeVisible();
  await readMail(email, "Your password on", asked);
});

test("a second device signs in: the alert arrives, and “This wasn't me” signs it out", async ({ page, browser }, info) => {
  const js = info.project.name;
  const username = uniqueName("alert", info);
  const email = await signUpWithEmail(page, info, username);
  const before = Date.now() - 1000;

  // Another browser and system than the account has used.
  const thief = await otherBrowser(browser, info, FIREFOX_WINDOWS);
  await signIn(thief, info, username);
  const alert = await readMail(email, "New sign-in to your account", before);
  expect(alert.text).toContain("Firefox");
  expect(alert.text).toContain("Windows");

  // The owner answers from their own browser.
  await page.goto(linkTo(alert, "/sign-in-alert?answer=no&token="));
  await expect(page).toHaveURL(/\/sign-in-alert\?answer=no$/);
  await screenshot(page, `sign-in-alert-not-me-${js}`);
  if (usesJavaScript(info)) await screenshotsEverywhere(page, "sign-in-alert-not-me");
  await ready(page, info);
  await page.getByTestId("answer-not-me").click();
  await expect(page).toHaveURL(/\/reset-password\?from=alert$/);
  await expect(page.getByTestId("notice")).toContainText("That sign-in has been signed out");
  await expectSignedOut(thief);

  // On to a new password, then the security activity tells the story.
  await ready(page, info);
  await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
  await page.getByTestId("reset-password").click();
  await expect(page).toHaveURL(/\/sign-in\?reset=1$/);
  await signIn(page, info, username, NEW_PASSWORD);
  await page.getByRole("link", { name: "Security" }).click();
  await expect(page).toHaveURL(/\/account\/security$/);
  const activity = page.getByTestId("activity");
  await expect(activity.locator("[data-kind='alert.denied']")).toHaveCount(1);
  await expect(activity.locator("[data-kind='sign_in.new']")).toHaveCount(1);
  await expect(activity.locator("[data-kind='password.reset']")).toHaveCount(1);
});

test("the security page: confirm the address, turn alerts off; screenshots", async ({ page, browser }, info) => {
  const username = uniqueName("security", info);
  const email = await signUpWithEmail(page, info, username);
  // Sign-up mailed a link to confirm the address.
  const verify = await readMail(email, "Confirm your email address");
  await page.goto("/account/security");
  await expect(page.getByTestId("email-status")).toHaveText("Not confirmed");
  await page.goto(linkTo(verify, "/verify-email?token="));
  await expect(page).toHaveURL(/\/verify-email$/);
  await ready(page, info);
  await page.getByTestId("confirm-link").click();
  await expect(page.getByTestId("link-done")).toContainText("Your email address is confirmed");
  await page.goto("/account/security");
  await expect(page.getByTestId("email-status")).toHaveText("Confirmed");

  await ready(page, info);
  await page.getByTestId("alerts-checkbox").uncheck();
  await page.getByTestId("save-alerts").click();
  await expect(page.getByTestId("notice")).toHaveText("New sign-in alerts are off.");
  await page.goto("/account/security");
  await expect(page.getByTestId("alerts-checkbox")).not.toBeChecked();
  await expect(page.getByTestId("activity").locator("[data-kind='alerts.off']")).toHaveCount(1);

  if (usesJavaScript(info)) {
    // The pages of this issue, as people see them: desktop and phone, light and dark.
    for (const [name, path] of [
      ["security", "/account/security"],
      ["forgot-password", "/forgot-password"],
    ]) {
      await page.goto(path);
      await screenshotsEverywhere(page, name);
    }
    // A rendered mail, as a mail program shows its HTML part.
    const reader = await otherBrowser(browser, info);
    await reader.setContent(verify.html);
    await screenshotsEverywhere(reader, "mail-verify");
  }
});
