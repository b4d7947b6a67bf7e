import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// The browser is Debian's Chromium: Playwright must never download one of its own.
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const port = Number(process.env.E2E_PORT ?? 3111);
const root = resolve(__dirname, "..");
// Workers load this file again: they must find the folder the runner made, not make another.
const dataDir = process.env.E2E_DATA_DIR ?? mkdtempSync(join(tmpdir(), "console-sessions-e2e-"));
process.env.E2E_DATA_DIR = dataDir;

export const baseURL = `http://127.0.0.1:${port}`;
// embed.spec.ts serves a page that frames ours on this port (allowed) and the next (not allowed).
export const embedPort = port + 1;
// base_path.spec.ts: a second server, mounted under /sso (BASE_PATH), on its own database.
export const basePathURL = `http://127.0.0.1:${port + 3}/sso`;
// factors.spec.ts: a third server whose sign-ins cover sensitive actions for 8 seconds only
// (STEP_UP_WINDOW), so "confirm access" can be seen without waiting ten minutes.
export const stepUpURL = `http://127.0.0.1:${port + 4}`;
// Tests that use the command line (createsuperuser) reach the same database as the server.
process.env.E2E_DATABASE_URL = `sqlite://${dataDir}/e2e.db`;
process.env.E2E_BINARY = `${root}/target/debug/console-sessions`;
// The mail the main server sends (MAIL_URL below): one .eml file per message.
process.env.E2E_MAIL_DIR = `${dataDir}/mail`;

export default defineConfig({
  testDir: "./tests",
  outputDir: "./test-results",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: chromium,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  projects: [
    { name: "javascript", use: { javaScriptEnabled: true } },
    { name: "no-javascript", use: { javaScriptEnabled: false } },
  ],
  webServer: [
    {
      // A freshly built server (make e2e builds it first) on its own SQLite file.
      command: `${root}/target/debug/console-sessions serve`,
      url: `${baseURL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
      env: {
        LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
        LEPTOS_SITE_ROOT: `${root}/target/site`,
        DATABASE_URL: `sqlite://${dataDir}/e2e.db`,
        // Browsers in the admin test claim addresses with X-Forwarded-For, as if behind a proxy.
        TRUSTED_PROXIES: "127.0.0.1/32",
        // Every spec signs up from this one machine, more often than a person would in an hour.
        SIGNUP_LIMIT_PER_IP: "0",
        EMBED_ORIGINS: `http://127.0.0.1:${port + 1}`,
        // Mail as .eml files, which recovery.spec.ts reads as a person reads their inbox.
        MAIL_URL: `file://${dataDir}/mail`,
        RUST_LOG: "warn",
      },
    },
    {
      // The same binary mounted under /sso, as behind a proxy that routes that path to it.
      command: `${root}/target/debug/console-sessions serve`,
      url: `${basePathURL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
      env: {
        LEPTOS_SITE_ADDR: `127.0.0.1:${port + 3}`,
        LEPTOS_SITE_ROOT: `${root}/target/site`,
        DATABASE_URL: `sqlite://${dataDir}/e2e-base-path.db`,
        BASE_PATH: "/sso",
        SIGNUP_LIMIT_PER_IP: "0",
        RUST_LOG: "warn",
      },
    },
    {
      command: `${root}/target/debug/console-sessions serve`,
      url: `${stepUpURL}/healthz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "pipe",
      stderr: "pipe",
      env: {
        LEPTOS_SITE_ADDR: `127.0.0.1:${port + 4}`,
        LEPTOS_SITE_ROOT: `${root}/target/site`,
        DATABASE_URL: `sqlite://${dataDir}/e2e-step-up.db`,
        STEP_UP_WINDOW: "8",
        SIGNUP_LIMIT_PER_IP: "0",
        MAIL_URL: `file://${dataDir}/mail-step-up`,
        RUST_LOG: "warn",
      },
    },
  ],
});
