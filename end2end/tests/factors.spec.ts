import { test, expect, Page, TestInfo } from "@playwright/test";
import { createHmac } from "node:crypto";
import { stepUpURL } from "../playwright.config";
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

/** RFC 6238 as every authenticator app computes it: HMAC-SHA1, 6 digits, 30-second steps. */
function totp(secretBase32: string, stepsFromNow = 0): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secretBase32.replace(/[\s=]/g, "").toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/g)!.map((b) => parseInt(b, 2)));
  const counter = Math.floor(Date.now() / 1000 / 30) + stepsFromNow;
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const digest = createHmac("sha1", key).update(message).digest();
  const offset = digest[digest.length - 1] & 0x0f;
  const value = (digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, "0");
}

/** Another browser (its own cookies) on the server `page` is on, with JavaScript as the project has it. */
async function otherPage(page: Page, info: TestInfo): Promise<Page> {
  const context = await page.context().browser()!.newContext({
    javaScriptEnabled: usesJavaScript(info),
    baseURL: new URL(page.url()).origin,
  });
  return context.newPage();
}

/** Sets up the authenticator app from the security page; returns its secret and recovery codes. */
async function setUpApp(page: Page, info: TestInfo, shots: boolean): Promise<{ secret: string; codes: string[] }> {
  await page.goto("/account/security");
  await ready(page, info);
  await expect(page.getByTestId("totp-status")).toHaveText("Off");
  await page.getByTestId("start-totp").click();
  await expect(page).toHaveURL(/\/account\/two-factor\/setup$/);
  await expect(page.getByTestId("totp-qr").locator("svg")).toBeVisible();
  const secret = (await page.getByTestId("totp-secret").textContent())!.trim();
  if (shots) await screenshotsEverywhere(page, "totp-setup");
  await ready(page, info);
  await page.getByTestId("code").fill("000000");
  await page.getByTestId("confirm-totp").click();
  await expect(page.getByTestId("form-error")).toContainText("The code is incorrect");
  await ready(page, info);
  await page.getByTestId("code").fill(totp(secret));
  await page.getByTestId("confirm-totp").click();
  await expect(page).toHaveURL(/\/account\/two-factor\/recovery-codes/);
  const codes = await page.getByTestId("recovery-codes").locator("li").allTextContents();
  expect(codes).toHaveLength(10);
  if (shots) await screenshotsEverywhere(page, "recovery-codes");
  await page.getByTestId("codes-saved").click();
  await expect(page).toHaveURL(/\/account\/security$/);
  await expect(page.getByTestId("totp-status")).toHaveText("On");
  await expect(page.getByTestId("codes-left")).toHaveText("10 of 10 recovery codes left.");
  return { secret, codes };
}

test("two-step sign-in: an authenticator app set up from a QR code, then asked for after the password", async ({ page }, info) => {
  const js = usesJavaScript(info);
  const username = uniqueName("totp", info);
  await signUp(page, info, username);
  const { secret, codes } = await setUpApp(page, info, js);
  if (js) await screenshotsEverywhere(page, "security-two-step-on");

  const laptop = await otherPage(page, info);
  await laptop.goto("/sign-in");
  await ready(laptop, info);
  await laptop.getByLabel("Username").fill(username);
  await laptop.getByLabel("Password").fill(PASSWORD);
  await laptop.getByTestId("sign-in").click();
  await expect(laptop).toHaveURL(/\/sign-in\/two-factor$/);
  if (js) await screenshotsEverywhere(laptop, "second-step");
  // Not signed in yet: the account pages still send it to sign in.
  await ready(laptop, info);
  await laptop.getByTestId("code").fill("123456");
  await laptop.getByTestId("verify-code").click();
  await expect(laptop.getByTestId("form-error")).toContainText("The code is incorrect");
  await screenshot(laptop, `second-step-error-${info.project.name}`);
  await ready(laptop, info);
  // The code that turned the app on is spent; the next step's is good.
  await laptop.getByTestId("code").fill(totp(secret, 1));
  await laptop.getByTestId("verify-code").click();
  await expect(laptop).toHaveURL(/\/account\/sessions$/);
  await expect(laptop.getByTestId("signed-in-as")).toContainText(username);
  const current = laptop.getByTestId("session").filter({ has: laptop.getByTestId("this-device") });
  await expect(current.getByTestId("session-auth")).toContainText("Password + authenticator app");
  await expect(current.getByTestId("session-auth")).toHaveAttribute("data-aal", "aal2");
  const first = laptop.getByTestId("session").filter({ hasNot: laptop.getByTestId("this-device") });
  await expect(first.getByTestId("session-auth")).toHaveText("Password");
  if (js) await screenshotsEverywhere(laptop, "devices-two-step");

  // A recovery code stands in for the phone, once.
  const phone = await otherPage(page, info);
  await phone.goto("/sign-in");
  await ready(phone, info);
  await phone.getByLabel("Username").fill(username);
  await phone.getByLabel("Password").fill(PASSWORD);
  await phone.getByTestId("sign-in").click();
  await expect(phone).toHaveURL(/\/sign-in\/two-factor$/);
  await ready(phone, info);
  await phone.getByTestId("code").fill(codes[0]);
  await phone.getByTestId("verify-code").click();
  await expect(phone).toHaveURL(/\/account\/sessions$/);
  const recovered = phone.getByTestId("session").filter({ has: phone.getByTestId("this-device") });
  await expect(recovered.getByTestId("session-auth")).toContainText("Password + recovery code");
});

test.describe("confirm access", () => {
  test.use({ baseURL: stepUpURL });

  test("signing out every other device asks for the password again once the window has passed", async ({ page }, info) => {
    const js = usesJavaScript(info);
    const username = uniqueName("stepup", info);
    await signUp(page, info, username);
    const laptop = await otherPage(page, info);
    await signIn(laptop, info, username);
    // STEP_UP_WINDOW is 8 seconds on this server.
    await page.waitForTimeout(8500);
    await page.goto("/account/sessions");
    await ready(page, info);
    await page.getByTestId("sign-out-others").click();
    await page.getByTestId("confirm-sign-out-others").click();
    await expect(page).toHaveURL(/\/confirm-access\?next=/);
    if (js) await screenshotsEverywhere(page, "confirm-access");
    await ready(page, info);
    await page.getByTestId("confirm-password").fill("not the password");
    await page.getByTestId("confirm-with-password").click();
    await expect(page.getByTestId("form-error")).toHaveText("The current password is incorrect.");
    await ready(page, info);
    await page.getByTestId("confirm-password").fill(PASSWORD);
    await page.getByTestId("confirm-with-password").click();
    // Back to the action it interrupted.
    await expect(page).toHaveURL(/\/account\/sessions$/);
    await ready(page, info);
    await page.getByTestId("sign-out-others").click();
    await page.getByTestId("confirm-sign-out-others").click();
    await expect(page.getByTestId("notice")).toContainText("1");
    await laptop.goto("/account/sessions");
    await expect(laptop).toHaveURL(/\/sign-in\?next=/);
  });

  test("with an authenticator app, a code confirms access too", async ({ page }, info) => {
    const username = uniqueName("stepcode", info);
    await signUp(page, info, username);
    const { secret } = await setUpApp(page, info, false);
    await page.waitForTimeout(8500);
    await page.goto("/account/security");
    await ready(page, info);
    await page.getByTestId("renew-codes").click();
    await expect(page).toHaveURL(/\/confirm-access\?next=/);
    await ready(page, info);
    await page.getByTestId("code").fill(totp(secret, 1));
    await page.getByTestId("confirm-with-code").click();
    await expect(page).toHaveURL(/\/account\/security$/);
    await ready(page, info);
    await page.getByTestId("renew-codes").click();
    await expect(page).toHaveURL(/\/account\/two-factor\/recovery-codes$/);
    await expect(page.getByTestId("recovery-codes").locator("li")).toHaveCount(10);
  });
});
