import { test, expect } from "@playwright/test";
import { mkdirSync } from "node:fs";

test("home page renders on the server and its status check works", async ({ page }, info) => {
  await page.goto("/");
  await expect(page).toHaveTitle(/console-sessions/);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Your sessions, under control");
  await expect(page.getByTestId("status")).toHaveText("Not checked yet.");

  const javascript = info.project.name === "javascript";
  if (javascript) {
    // Wait until the page is hydrated, so the click runs in the browser, not as a form post.
    await page.locator("body[data-hydrated='true']").waitFor({ state: "attached" });
  }
  await page.getByTestId("check-status").click();
  if (javascript) {
    // Hydrated: the answer arrives in place, on the same page.
    await expect(page.getByTestId("status")).toHaveText(/All systems normal: the sqlite database answers\./);
    await expect(page).toHaveURL(/\/$/);
  } else {
    // Without JavaScript the form posts to the server function, which sends the browser back home.
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Your sessions, under control");
  }

  mkdirSync("screenshots", { recursive: true });
  await page.screenshot({ path: `screenshots/home-${info.project.name}.png`, fullPage: true });
});

test("health check reports the database", async ({ request }) => {
  const response = await request.get("/healthz");
  expect(response.status()).toBe(200);
  expect(await response.json()).toEqual({ status: "ok", database: "ok" });
});

test("unknown paths get a 404 page", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});
