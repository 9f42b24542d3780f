// Opens a page in Debian's Chromium with playwright-core and prints what its
// probe() returns as one JSON line every interval, until standard input
// closes or the time limit passes; then closes the browser. Errors of the
// page and of Chromium are printed as {"log": ...} lines.
//
// Each line on standard input is a command, {"id": N, "op": ..., ...}, run
// on the page between samples and answered with {"reply": N, "value": ...}
// or {"reply": N, "error": "..."} (see run below).
//
//   node play.mjs CHROMIUM PAGE_URL USER_DATA_DIR INTERVAL_MS LIMIT_MS
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [executablePath, pageURL, userDataDir, intervalArg, limitArg] = process.argv.slice(2);
const interval = Number(intervalArg);
const limit = Number(limitArg);
const print = (v) => process.stdout.write(JSON.stringify(v) + "\n");

let done = false;
const commands = [];
const lines = createInterface({ input: process.stdin });
lines.on("line", (l) => { if (l.trim()) commands.push(JSON.parse(l)); });
lines.on("close", () => { done = true; });
const deadline = Date.now() + limit;

// docs/kvs-playback.md §7: Debian's Chromium, no download of its own, no
// network but the test's, autoplay without a user gesture.
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  timeout: 30000,
  acceptDownloads: true,
  viewport: { width: 1280, height: 900 },
  // /dev/shm is small in containers: a renderer that runs out of it dies.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required"],
});

// run does one command. Positions (x, y, from, to) are fractions of the
// element's box; selectors are Playwright's.
async function run(page, c) {
  const at = async (sel, x, y) => {
    const box = await page.locator(sel).first().boundingBox();
    return [box.x + box.width * x, box.y + box.height * (y ?? 0.5)];
  };
  switch (c.op) {
    case "goto":
      return void await page.goto(c.url, { timeout: 15000 });
    case "tab": // opens url in another tab, which stays open; commands still act on the first
      return void await (await context.newPage()).goto(c.url, { timeout: 15000 });
    case "waitFor": // until an element matching selector (and text) is visible
      return void await page.locator(c.selector).filter(c.text ? { hasText: c.text } : {}).first().waitFor({ timeout: c.timeout ?? 15000 });
    case "text":
      return page.locator(c.selector).allInnerTexts();
    case "fill":
      return void await page.locator(c.selector).first().fill(c.value);
    case "click":
      if (c.x === undefined) return void await page.locator(c.selector).first().click();
      return void await page.mouse.click(...await at(c.selector, c.x, c.y));
    case "drag": {
      const [x0, y0] = await at(c.selector, c.from);
      const [x1] = await at(c.selector, c.to);
      await page.mouse.move(x0, y0);
      await page.mouse.down();
      await page.mouse.move((x0 + x1) / 2, y0, { steps: 5 });
      await page.mouse.move(x1, y0, { steps: 5 });
      return void await page.mouse.up();
    }
    case "eval":
      return page.evaluate(c.expr);
    case "download": { // clicks selector and saves the file it downloads
      const [dl] = await Promise.all([page.waitForEvent("download", { timeout: c.timeout ?? 30000 }), page.locator(c.selector).first().click()]);
      await dl.saveAs(c.path);
      return dl.suggestedFilename();
    }
    case "screenshot":
      return void await page.screenshot({ path: c.path, fullPage: !!c.fullPage });
    default:
      throw new Error(`unknown command ${c.op}`);
  }
}

try {
  const page = context.pages()[0] ?? await context.newPage();
  await context.addInitScript({ path: "probe.js" });
  page.on("pageerror", (e) => print({ log: `page error: ${e.message}` }));
  page.on("console", (m) => { if (m.type() === "error") print({ log: `console: ${m.text()}` }); });
  // Which request a console's "Failed to load resource" was; session tokens cut.
  page.on("response", (r) => {
    if (r.status() >= 400) print({ log: `HTTP ${r.status()}: ${r.request().method()} ${r.url().replace(/SessionToken=[^&]*/, "SessionToken=...")}` });
  });
  page.on("requestfailed", (r) => print({ log: `request failed: ${r.failure()?.errorText}: ${r.method()} ${r.url().replace(/SessionToken=[^&]*/, "SessionToken=...")}` }));
  await page.goto(pageURL, { timeout: 15000 });
  while (!done && Date.now() < deadline) {
    while (commands.length) {
      const c = commands.shift();
      try {
        print({ reply: c.id, value: (await run(page, c)) ?? null });
      } catch (e) {
        print({ reply: c.id, error: e.message });
      }
    }
    print(await page.evaluate(() => window.probe()));
    await new Promise((r) => setTimeout(r, interval));
  }
} catch (e) {
  print({ log: `driver: ${e.message}` });
  process.exitCode = 1;
} finally {
  await context.close();
}
