import { test, expect } from "@playwright/test";
import { ready, screenshotsEverywhere, signIn, signUp, uniqueName, usesJavaScript } from "./helpers";

test("rename a device", async ({ page }, info) => {
  const username = uniqueName("rename", info);
  await signUp(page, info, username);
  await ready(page, info);

  const card = page.getByTestId("session").first();
  await expect(card.getByTestId("this-device")).toBeVisible();
  // Unnamed, the card is titled by the browser it describes, and shows no second line for it.
  const summary = (await card.getByTestId("session-summary").textContent())!.trim();
  expect(summary).not.toBe("");
  await expect(card.getByTestId("session-device")).toHaveCount(0);

  await card.getByTestId("rename-session").click();
  const input = card.getByTestId("rename-input");
  await expect(input).toBeVisible();
  // A 61st character cannot be typed: the field stops at 60.
  await expect(input).toHaveAttribute("maxlength", "60");
  await input.fill("Work laptop");
  await card.getByTestId("rename-save").click();

  await expect(page.getByTestId("notice")).toHaveText("The device's name was saved.");
  const renamed = page.getByTestId("session").first();
  await expect(renamed.getByTestId("session-summary")).toHaveText("Work laptop");
  await expect(renamed.getByTestId("session-device")).toHaveText(summary);
  await expect(renamed.getByTestId("this-device")).toBeVisible();

  // The name lasts: a fresh load shows it too.
  await page.goto("/account/sessions");
  await ready(page, info);
  await expect(page.getByTestId("session-summary").first()).toHaveText("Work laptop");
  await expect(page.getByTestId("session-device").first()).toHaveText(summary);
  await expect(page.getByTestId("rename-input").first()).toHaveValue("Work laptop");
});

test("recently ended after A signs B out", async ({ page, browser }, info) => {
  const username = uniqueName("ended", info);
  await signUp(page, info, username);
  await ready(page, info);

  // Before anything ends.
  const recent = page.getByTestId("recently-ended");
  await expect(recent).toContainText("Recently ended");
  await expect(recent).toContainText("No session of yours has ended lately.");
  await expect(recent.getByTestId("ended-session")).toHaveCount(0);

  // A has a name (for the screenshot of a renamed device); B still ends from "this device".
  const current = page.locator("[data-testid='session'][data-current='true']");
  await current.getByTestId("rename-session").click();
  await current.getByTestId("rename-input").fill("Work laptop");
  await current.getByTestId("rename-save").click();
  await expect(page.getByTestId("notice")).toHaveText("The device's name was saved.");
  await expect(current.getByTestId("session-summary")).toHaveText("Work laptop");

  // B: the same person in another browser.
  const context = await browser.newContext({ javaScriptEnabled: usesJavaScript(info), baseURL: new URL(page.url()).origin });
  const other = await context.newPage();
  await signIn(other, info, username);

  await page.reload();
  await ready(page, info);
  await expect(page.getByTestId("session")).toHaveCount(2);

  // A signs B out.
  const bCard = page.locator("[data-testid='session'][data-current='false']");
  await expect(bCard).toHaveCount(1);
  await bCard.getByTestId("sign-out-session").click();
  await bCard.getByTestId("confirm-sign-out").click();
  await expect(page.getByTestId("notice")).toHaveText("The session was signed out.");
  await expect(page.getByTestId("session")).toHaveCount(1);

  const ended = recent.getByTestId("ended-session");
  await expect(ended).toHaveCount(1);
  await expect(ended).toHaveAttribute("data-reason", "revoked");
  await expect(ended.getByTestId("ended-reason")).toHaveText("Signed out from this device");
  await expect(recent).not.toContainText("No session of yours has ended lately.");

  // B's next request is sent to sign in.
  await other.reload();
  await expect(other).toHaveURL(/\/sign-in\?next=%2Faccount%2Fsessions&ended=1$/);
  await expect(other.getByTestId("notice")).toHaveText("Your session has ended. Please sign in again.");

  if (usesJavaScript(info)) {
    await page.goto("/account/sessions");
    await ready(page, info);
    await expect(page.getByTestId("ended-session")).toHaveCount(1);
    await screenshotsEverywhere(page, "devices-renamed-and-ended");
  }
  await context.close();
});
