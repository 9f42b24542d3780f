// Opens a page in Debian's Chromium with playwright-core and prints what its
// probe() returns as one JSON line every interval, until standard input
// closes or the time limit passes; then closes the browser. Errors of the
// page and of Chromium are printed as {"log": ...} lines.
//
//   node play.mjs CHROMIUM PAGE_URL USER_DATA_DIR INTERVAL_MS LIMIT_MS
import { chromium } from "playwright-core";

const [executablePath, pageURL, userDataDir, intervalArg, limitArg] = process.argv.slice(2);
const interval = Number(intervalArg);
const limit = Number(limitArg);
const print = (v) => process.stdout.write(JSON.stringify(v) + "\n");

let done = false;
process.stdin.on("end", () => { done = true; });
process.stdin.on("close", () => { done = true; });
process.stdin.resume();
const deadline = Date.now() + limit;

// docs/kvs-playback.md §7: Debian's Chromium, no download of its own, no
// network but the test's, autoplay without a user gesture.
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  timeout: 30000,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.on("pageerror", (e) => print({ log: `page error: ${e.message}` }));
  page.on("console", (m) => { if (m.type() === "error") print({ log: `console: ${m.text()}` }); });
  await page.goto(pageURL, { timeout: 15000 });
  while (!done && Date.now() < deadline) {
    print(await page.evaluate(() => window.probe()));
    await new Promise((r) => setTimeout(r, interval));
  }
} catch (e) {
  print({ log: `driver: ${e.message}` });
  process.exitCode = 1;
} finally {
  await context.close();
}
