import { test, expect } from "@playwright/test";
import { createServer, Server } from "node:http";
import { AddressInfo } from "node:net";
import { screenshot, signUp, uniqueName, usesJavaScript } from "./helpers";
import { baseURL, embedPort } from "../playwright.config";

// Another site's page with our devices page in an iframe, served on its own port. The allowed one
// is EMBED_ORIGINS of the server under test; the other is not. Both are 127.0.0.1, so the same
// *site* as ours (ports do not count), and our SameSite=Lax cookie reaches the frame.
function hostPage(port: number): Promise<Server> {
  const html = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Intranet</title>
<style>body{font-family:sans-serif;margin:0;background:#eef1f5}header{background:#1f2937;color:#fff;padding:12px 20px}
main{padding:20px}iframe{width:100%;height:560px;border:1px solid #cbd5e1;border-radius:8px;background:#fff}</style></head>
<body><header>Intranet · Account</header><main><h1>Security</h1>
<iframe title="Your devices" src="${baseURL}/account/sessions"></iframe></main></body></html>`;
  const server = createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(html);
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

test("an allowed site shows the devices page in a frame, without our chrome", async ({ page }, info) => {
  const host = await hostPage(embedPort);
  try {
    await signUp(page, info, uniqueName("embed", info));
    await page.goto(`http://127.0.0.1:${(host.address() as AddressInfo).port}/`);
    const frame = page.frameLocator("iframe");
    await expect(frame.getByRole("heading", { name: "Your devices" })).toBeVisible();
    await expect(frame.getByText("This device")).toBeVisible();
    // Minimal chrome: no top bar or footer inside the frame.
    await expect(frame.locator("body.embedded")).toHaveCount(1);
    await expect(frame.locator(".topbar")).toBeHidden();
    await expect(frame.locator(".footer")).toBeHidden();
    await screenshot(page, `embed-${usesJavaScript(info) ? "js" : "nojs"}`);
    // On a phone the frame is narrow: the page must fit it without scrolling sideways.
    await page.setViewportSize({ width: 375, height: 740 });
    await expect(frame.getByRole("heading", { name: "Your devices" })).toBeVisible();
    const overflow = await frame
      .locator("html")
      .evaluate((html) => html.scrollWidth - html.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await screenshot(page, `embed-phone-${usesJavaScript(info) ? "js" : "nojs"}`);
  } finally {
    host.close();
  }
});

test("a site that is not allowed cannot frame our pages", async ({ page }, info) => {
  const host = await hostPage(embedPort + 1);
  try {
    await signUp(page, info, uniqueName("noembed", info));
    await page.goto(`http://127.0.0.1:${embedPort + 1}/`);
    // Chromium refuses the frame (frame-ancestors) and shows its own error page in it instead.
    await expect
      .poll(() => page.frames().some((frame) => frame.url().startsWith("chrome-error://")))
      .toBe(true);
    await expect(page.frameLocator("iframe").getByRole("heading", { name: "Your devices" })).toHaveCount(0);
  } finally {
    host.close();
  }
});
