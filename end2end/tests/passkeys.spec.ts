import { test, expect, Page, TestInfo, CDPSession } from "@playwright/test";
import { baseURL, stepUpURL } from "../playwright.config";
import { PASSWORD, ready, screenshotsEverywhere, signIn, signUp, uniqueName, usesJavaScript } from "./helpers";

// Browsers allow passkeys on a host name only, never on an IP address: these tests open the
// servers as localhost, which is what the servers' passkeys are bound to (no PUBLIC_ORIGIN, and
// listening on loopback: http://localhost:PORT).
const local = (url: string) => url.replace("127.0.0.1", "localhost");

/**
 * Chromium's virtual authenticator (the DevTools Protocol's WebAuthn domain) on this page: a
 * platform authenticator that keeps discoverable passkeys and verifies its user at once, as a
 * fingerprint would.
 */
async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}

async function addPasskey(page: Page, info: TestInfo, name: string) {
  await page.goto("/account/security");
  await ready(page, info);
  await page.getByTestId("passkey-name-input").fill(name);
  await page.getByTestId("add-passkey").click();
}

async function signOut(page: Page, info: TestInfo) {
  await page.goto("/account/sessions");
  await ready(page, info);
  await page.getByTestId("sign-out").click();
  await expect(page).toHaveURL(/\/sign-in/);
}

test.describe("passkeys", () => {
  test.use({ baseURL: local(baseURL) });

  test("a passkey is added, then signs in alone, and serves as the second step after a password", async ({ page }, info) => {
    test.skip(!usesJavaScript(info), "passkeys need JavaScript (the no-JavaScript test below checks what is said instead)");
    const { cdp, id } = await virtualAuthenticator(page);
    const username = uniqueName("passkey", info);
    await signUp(page, info, username);
    await page.goto("/account/security");
    await ready(page, info);
    await expect(page.getByTestId("totp-status")).toHaveText("Off");
    await addPasskey(page, info, "Work laptop");
    // The first second factor brings recovery codes, shown once.
    await expect(page).toHaveURL(/\/account\/two-factor\/recovery-codes\?new=passkey$/);
    await expect(page.getByTestId("recovery-codes").locator("li")).toHaveCount(10);
    await page.getByTestId("codes-saved").click();
    await expect(page).toHaveURL(/\/account\/security$/);
    await expect(page.getByTestId("totp-status")).toHaveText("On");
    await expect(page.getByTestId("passkey-name")).toHaveText(["Work laptop"]);
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId: id });
    expect(credentials).toHaveLength(1);
    expect(credentials[0].isResidentCredential).toBe(true);
    await screenshotsEverywhere(page, "passkeys-security");

    // Renaming works in place.
    await ready(page, info);
    await page.getByText("Rename").click();
    await page.getByTestId("passkey-new-name").fill("Laptop");
    await page.getByTestId("rename-passkey").click();
    await expect(page.getByTestId("passkey-name")).toHaveText(["Laptop"]);

    // Signed out: the passkey alone signs in, no username typed.
    await signOut(page, info);
    await page.goto("/sign-in");
    await ready(page, info);
    await screenshotsEverywhere(page, "sign-in-passkey");
    await page.getByTestId("sign-in-passkey").click();
    await expect(page).toHaveURL(/\/account\/sessions$/);
    await expect(page.getByTestId("signed-in-as")).toContainText(username);
    await expect(page.getByTestId("session-auth").first()).toContainText("Passkey");
    await expect(page.getByTestId("session-auth").first()).toHaveAttribute("data-aal", "aal2");
    await screenshotsEverywhere(page, "devices-passkey");

    // Signed out again: the password now asks for the passkey as its second step.
    await signOut(page, info);
    await page.goto("/sign-in");
    await ready(page, info);
    await page.getByLabel("Username").fill(username);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByTestId("sign-in").click();
    await expect(page).toHaveURL(/\/sign-in\/two-factor/);
    await ready(page, info);
    await screenshotsEverywhere(page, "second-step-passkey");
    await page.getByTestId("second-step-passkey").click();
    await expect(page).toHaveURL(/\/account\/sessions$/);
    await expect(page.getByTestId("session-auth").first()).toContainText("Password + passkey");

    // A second passkey on the same authenticator is refused by it (the first is excluded).
    await addPasskey(page, info, "Again");
    await expect(page.locator("[data-passkey-status]").first()).toContainText("already holds a passkey");
  });

  test("without JavaScript, the passkey buttons give way to a note that they need it", async ({ page }, info) => {
    test.skip(usesJavaScript(info), "the JavaScript project uses passkeys for real above");
    const username = uniqueName("nopasskey", info);
    await signUp(page, info, username);
    await page.goto("/account/security");
    await expect(page.getByTestId("passkey-needs-js")).toHaveText("Passkeys need JavaScript, which is off in this browser.");
    await expect(page.getByTestId("add-passkey")).toBeHidden();
    // The rest of the card works: nothing to list yet, two-step sign-in off.
    await expect(page.getByTestId("totp-status")).toHaveText("Off");
    await screenshotsEverywhere(page, "passkeys-no-javascript");
    await signOut(page, info);
    await page.goto("/sign-in");
    await expect(page.getByTestId("passkey-needs-js")).toBeVisible();
    await expect(page.getByTestId("sign-in-passkey")).toBeHidden();
  });
});

test.describe("passkeys confirm access", () => {
  test.use({ baseURL: local(stepUpURL) });

  test("a passkey confirms access before signing out every other device", async ({ page }, info) => {
    test.skip(!usesJavaScript(info), "passkeys need JavaScript");
    await virtualAuthenticator(page);
    const username = uniqueName("passkeystep", info);
    await signUp(page, info, username);
    // Another device, signed in before the passkey was added (with only a password then).
    const laptop = await page.context().browser()!.newContext({ baseURL: local(stepUpURL) });
    const other = await laptop.newPage();
    await signIn(other, info, username);
    await addPasskey(page, info, "Phone");
    await expect(page).toHaveURL(/\/account\/two-factor\/recovery-codes/);
    // STEP_UP_WINDOW is 8 seconds on this server.
    await page.waitForTimeout(8500);
    await page.goto("/account/sessions");
    await ready(page, info);
    await page.getByTestId("sign-out-others").click();
    await page.getByTestId("confirm-sign-out-others").click();
    await expect(page).toHaveURL(/\/confirm-access\?next=/);
    await ready(page, info);
    await screenshotsEverywhere(page, "confirm-access-passkey");
    await page.getByTestId("confirm-with-passkey").click();
    await expect(page).toHaveURL(/\/account\/sessions$/);
    await ready(page, info);
    await page.getByTestId("sign-out-others").click();
    await page.getByTestId("confirm-sign-out-others").click();
    await expect(page.getByTestId("notice")).toContainText("1");
    await other.goto("/account/sessions");
    await expect(other).toHaveURL(/\/sign-in\?next=/);
    await laptop.close();
  });
});
