import { test, expect } from "@playwright/test";
import { PASSWORD, ready, screenshot, signIn, signUp, uniqueName, usesJavaScript } from "./helpers";

const NEW_PASSWORD = "a brand new passphrase";

test("sign up, sign out, sign in and change the password", async ({ page }, info) => {
  const username = uniqueName("flow", info);
  const js = info.project.name;

  await page.goto("/sign-up");
  await screenshot(page, `sign-up-${js}`);
  await signUp(page, info, username);

  // Sign out from the top bar: the server ends the session and says so on the sign-in page.
  await ready(page, info);
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/sign-in\?signed_out=1$/);
  await expect(page.getByTestId("notice")).toHaveText("You have been signed out.");
  await expect(page.getByTestId("signed-in-as")).toHaveCount(0);

  // A wrong password gets one generic message, and the username stays typed in.
  await ready(page, info);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill("not the password");
  await page.getByTestId("sign-in").click();
  await expect(page.getByTestId("form-error")).toHaveText("The username or password is incorrect.");
  await expect(page.getByLabel("Username")).toHaveValue(username);
  await screenshot(page, `sign-in-error-${js}`);

  await signIn(page, info, username);

  // Change the password: the wrong current one is refused first.
  await page.getByRole("link", { name: "Password" }).click();
  await expect(page).toHaveURL(/\/account\/password$/);
  await ready(page, info);
  await page.getByLabel("Current password").fill("wrong current");
  await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
  await page.getByTestId("change-password").click();
  await expect(page.getByTestId("form-error")).toHaveText("The current password is incorrect.");

  await ready(page, info);
  await page.getByLabel("Current password").fill(PASSWORD);
  await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Repeat the new password").fill(NEW_PASSWORD);
  await expect(page.getByLabel("Sign out all my other sessions")).toBeChecked();
  await page.getByTestId("change-password").click();
  await expect(page.getByTestId("notice")).toHaveText("Your password was changed.");
  await expect(page.getByLabel("Current password")).toHaveValue("");
  await screenshot(page, `change-password-${js}`);

  // This session survived the change; the new password works after signing out.
  await page.goto("/account/sessions");
  await expect(page.getByTestId("this-device")).toBeVisible();
  await ready(page, info);
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/sign-in/);
  await signIn(page, info, username, NEW_PASSWORD);
});

test("pages that need an account send visitors to sign in and back", async ({ page }, info) => {
  const username = uniqueName("next", info);
  await page.goto("/account/password");
  await expect(page).toHaveURL(/\/sign-in\?next=%2Faccount%2Fpassword$/);
  await expect(page.getByTestId("notice")).toHaveText("Please sign in to continue.");
  // Creating the account elsewhere, then signing in from here, lands back on the page asked for.
  const other = await page.context().browser()!.newContext({ javaScriptEnabled: usesJavaScript(info) });
  const otherPage = await other.newPage();
  await signUp(otherPage, info, username);
  await other.close();
  await ready(page, info);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByTestId("sign-in").click();
  await expect(page).toHaveURL(/\/account\/password$/);
  await expect(page.getByRole("heading", { name: "Change password" })).toBeVisible();
});

test("sign-in pages read well on a phone", async ({ page }, info) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto("/sign-in");
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  expect(overflow).toBe(false);
  await page.emulateMedia({ colorScheme: "dark" });
  await screenshot(page, `sign-in-phone-dark-${info.project.name}`);
});
