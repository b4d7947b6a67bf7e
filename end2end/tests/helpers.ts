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

/** The page as it is now, on a desktop and a phone, light and dark (then back to desktop light). */
export async function screenshotsEverywhere(page: Page, name: string): Promise<void> {
  for (const scheme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.setViewportSize({ width: 1280, height: 900 });
    await screenshot(page, `${name}-desktop-${scheme}`);
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, `${name}-phone-${scheme}`);
  }
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 1280, height: 720 });
}

/** One message the server sent (MAIL_URL is a folder of .eml files in the tests). */
export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/**
 * The newest message to `to` whose subject starts with `subject`, once it has been written (the
 * server's mail worker writes it a moment after the page answered).
 */
export async function readMail(to: string, subject: string, after = 0): Promise<Mail> {
  const { readdirSync, readFileSync, statSync } = await import("node:fs");
  const { join } = await import("node:path");
  const PostalMime = (await import("postal-mime")).default;
  const folder = process.env.E2E_MAIL_DIR!;
  const deadline = Date.now() + 15_000;
  for (;;) {
    let files: string[] = [];
    try {
      files = readdirSync(folder).filter((name) => name.endsWith(".eml"));
    } catch {
      // Not made until the first message.
    }
    const found: { at: number; mail: Mail }[] = [];
    for (const name of files) {
      const path = join(folder, name);
      const at = statSync(path).mtimeMs;
      if (at < after) continue;
      const parsed = await PostalMime.parse(readFileSync(path));
      const mail = {
        to: parsed.to?.[0]?.address ?? "",
        subject: parsed.subject ?? "",
        text: parsed.text ?? "",
        html: parsed.html ?? "",
      };
      if (mail.to === to && mail.subject.startsWith(subject)) found.push({ at, mail });
    }
    if (found.length > 0) {
      found.sort((a, b) => a.at - b.at);
      return found[found.length - 1].mail;
    }
    if (Date.now() > deadline) throw new Error(`no "${subject}" mail to ${to}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The link in a mail's text that leads to `page`, as a path with its query. */
export function linkTo(mail: Mail, page: string): string {
  const match = mail.text.match(new RegExp(`https?://[^/\\s]+(${page.replace(/[?]/g, "\\?")}[^\\s]*)`));
  if (!match) throw new Error(`no link to ${page} in: ${mail.text}`);
  return match[1];
}
