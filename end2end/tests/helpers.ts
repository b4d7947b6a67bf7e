import { expect, Page, TestInfo } from "@playwright/test";
import { mkdirSync } from "node:fs";

export const PASSWORD = "correct horse battery";

/** A username no other test (or earlier run against the same server) uses. */
export function uniqueName(prefix: string, info: TestInfo): string {
  const js = info.project.name === "javascript" ? "js" : "nojs";
  return `${prefix}-${js}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
}

export function usesJavaScript(info: TestInfo): boolean {
  return info.project.name === "javascript";
}

/** With JavaScript, wait until the page is hydrated so clicks run in the app, not as form posts. */
export async function ready(page: Page, info: TestInfo): Promise<void> {
  if (usesJavaScript(info)) {
    await page.locator("body[data-hydrated='true']").waitFor({ state: "attached" });
  }
}

export async function signUp(page: Page, info: TestInfo, username: string, password = PASSWORD) {
  await page.goto("/sign-up");
  await ready(page, info);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Repeat the password").fill(password);
  await page.getByTestId("sign-up").click();
  await expect(page).toHaveURL(/\/account\/sessions$/);
  await expect(page.getByTestId("signed-in-as")).toContainText(username);
}

export async function signIn(page: Page, info: TestInfo, username: string, password = PASSWORD) {
  await page.goto("/sign-in");
  await ready(page, info);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByTestId("sign-in").click();
  await expect(page).toHaveURL(/\/account\/sessions$/);
  await expect(page.getByTestId("signed-in-as")).toContainText(username);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync("screenshots", { recursive: true });
  await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}
