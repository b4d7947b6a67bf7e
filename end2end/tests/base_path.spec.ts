import { test, expect } from "@playwright/test";
import { PASSWORD, screenshot, uniqueName, usesJavaScript } from "./helpers";
import { basePathURL } from "../playwright.config";

// The app mounted under /sso (BASE_PATH): every page, link, form, server function and asset must
// stay under it, hydrated or not. Requests that leave /sso would get this server's 404s.
test.use({ baseURL: `${basePathURL}/` });

test("the whole app works under a base path", async ({ page }, info) => {
  const outside: string[] = [];
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.port === new URL(basePathURL).port && !url.pathname.startsWith("/sso")) {
      outside.push(url.pathname);
    }
  });
  const hydrated = async () => {
    if (usesJavaScript(info)) {
      await page.locator("body[data-hydrated='true']").waitFor({ state: "attached" });
    }
  };
  const username = uniqueName("base", info);

  await page.goto(`${basePathURL}/sign-up`);
  await hydrated();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Repeat the password").fill(PASSWORD);
  await page.getByTestId("sign-up").click();
  await expect(page).toHaveURL(`${basePathURL}/account/sessions`);
  await expect(page.getByRole("heading", { name: "Your devices" })).toBeVisible();
  await expect(page.getByTestId("signed-in-as")).toContainText(username);
  // The stylesheet came from under the base: the page is styled.
  await expect(page.locator(".topbar")).toHaveCSS("display", "flex");

  // Links in the top bar navigate under the base (client-side with JavaScript).
  await page.getByRole("link", { name: "Password" }).click();
  await expect(page).toHaveURL(`${basePathURL}/account/password`);
  await expect(page.getByRole("heading", { name: "Change password" })).toBeVisible();
  await page.getByRole("link", { name: "Devices" }).click();
  await expect(page).toHaveURL(`${basePathURL}/account/sessions`);
  await expect(page.getByText("This device")).toBeVisible();
  await screenshot(page, `base-path-${usesJavaScript(info) ? "js" : "nojs"}`);
  await page.setViewportSize({ width: 375, height: 740 });
  await screenshot(page, `base-path-phone-${usesJavaScript(info) ? "js" : "nojs"}`);
  await page.setViewportSize({ width: 1280, height: 720 });

  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(new RegExp(`^${basePathURL}/sign-in\\?signed_out=1$`));
  await expect(page.getByText("You have been signed out.")).toBeVisible();

  // Signing in again, sent there by a protected page, comes back to it.
  await page.goto(`${basePathURL}/account/password`);
  await expect(page).toHaveURL(/\/sso\/sign-in\?next=%2Fsso%2Faccount%2Fpassword/);
  await hydrated();
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByTestId("sign-in").click();
  await expect(page).toHaveURL(`${basePathURL}/account/password`);
  await expect(page.getByTestId("signed-in-as")).toContainText(username);

  expect(outside, "requests outside /sso").toEqual([]);
});
