import { test, expect } from "@playwright/test";
import { PASSWORD, ready, screenshotsEverywhere, signUp, uniqueName, usesJavaScript } from "./helpers";

test("keep me signed in: unticked, the session ends with the browser; ticked, it lasts", async ({ page, browser }, info) => {
  const username = uniqueName("remember", info);
  await signUp(page, info, username);

  for (const keep of [false, true]) {
    const context = await browser.newContext({ javaScriptEnabled: usesJavaScript(info), baseURL: new URL(page.url()).origin });
    const other = await context.newPage();
    await other.goto("/sign-in");
    await ready(other, info);
    await other.getByLabel("Username").fill(username);
    await other.getByLabel("Password").fill(PASSWORD);
    const box = other.getByTestId("remember-me");
    await expect(box).toBeChecked();
    if (!keep) await box.uncheck();
    if (!keep && usesJavaScript(info)) await screenshotsEverywhere(other, "sign-in-remember-me");
    await other.getByTestId("sign-in").click();
    await expect(other).toHaveURL(/\/account\/sessions$/);
    const cookie = (await context.cookies()).find((c) => c.name === "session");
    expect(cookie).toBeDefined();
    // A browser session's cookie has no expiry (-1); a kept one expires in about two weeks.
    if (keep) {
      expect(cookie!.expires).toBeGreaterThan(Date.now() / 1000 + 13 * 24 * 3600);
    } else {
      expect(cookie!.expires).toBe(-1);
    }
    // The current session is pinned on top.
    const expires = other.getByTestId("session-expires").first();
    if (keep) {
      await expect(expires).not.toHaveText("When the browser closes");
    } else {
      await expect(expires).toHaveText("When the browser closes");
      if (usesJavaScript(info)) await screenshotsEverywhere(other, "devices-browser-session");
    }
    await context.close();
  }
});
