// Real-browser checks against a running leadgate, driven by tests/integration/browser.rs:
// headless Chromium through playwright-core, axe-core on every page, screenshots saved.
// Prints one line per check; exits non-zero with the failures listed.
"use strict";

const path = require("path");
const fs = require("fs");

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const MODULES = env("BROWSER_MODULES");
const { chromium } = require(path.join(MODULES, "playwright-core"));
const AXE = fs.readFileSync(path.join(MODULES, "axe-core", "axe.min.js"), "utf8");
const BASE = env("APP_URL");
const ALLOWED = env("ALLOWED_ORIGIN");
const DENIED = env("DENIED_ORIGIN");
const PASSWORD = env("ADMIN_PASSWORD");
const SHOTS = env("SCREENSHOTS");
const ONLY = process.env.LEADGATE_TEST_BROWSER_ONLY || "";

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
// Each typed as a local number: the phone country comes from the browser's region.
const LANGS = [
  { code: "es", locale: "es-CO", phone: "300 123 4567", e164: "+573001234567", paid: "¡Pago recibido!", declined: "El pago no fue aprobado" },
  { code: "pt-BR", locale: "pt-BR", phone: "11 91234 5678", e164: "+5511912345678", paid: "Pagamento recebido!", declined: "O pagamento não foi aprovado" },
  { code: "en", locale: "en-US", phone: "415 555 0100", e164: "+14155550100", paid: "Payment received!", declined: "The payment was not approved" },
];

const failures = [];
const results = [];

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// axe runs through the DevTools protocol (page.evaluate), which the pages' CSP does not
// govern, so the pages are checked exactly as served.
async function axe(page, name) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  });
  const bad = found.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, `axe on ${name}: ${JSON.stringify(bad)}`);
  return found.length;
}

async function fill(frame, who) {
  await frame.fill("#name", who.name);
  await frame.fill("#email", who.email);
  await frame.fill("#phone", who.phone);
}

async function context(browser, opts) {
  return browser.newContext({
    viewport: opts.viewport || DESKTOP,
    isMobile: opts.viewport === PHONE,
    hasTouch: opts.viewport === PHONE,
    locale: opts.locale || "es-CO",
    javaScriptEnabled: opts.js !== false,
    reducedMotion: "reduce",
  });
}

async function run(name, fn) {
  if (ONLY && !name.includes(ONLY)) return;
  const started = Date.now();
  try {
    await fn();
    results.push(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures.push(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
    results.push(`FAIL ${name}`);
  }
}

// The whole journey in one language on one viewport: form, sandbox checkout, paid page.
async function journey(browser, lang, viewport, label) {
  const ctx = await context(browser, { viewport, locale: lang.locale });
  const page = await ctx.newPage();
  try {
    const res = await page.goto(`${BASE}/c/demo`);
    check(res.status() === 200, `form answered ${res.status()}`);
    check((await page.getAttribute("html", "lang")) === lang.code, `form lang ${await page.getAttribute("html", "lang")}`);
    await axe(page, `form ${lang.code} ${label}`);
    await shot(page, `form-${lang.code}-${label}`);
    await fill(page, { name: "Ana Pérez", email: `ana.${lang.code}.${label}@example.com`, phone: lang.phone });
    await Promise.all([page.waitForURL(/\/sandbox\/pay\//), page.click("button[type=submit]")]);
    check((await page.getAttribute("html", "lang")) === lang.code, `sandbox lang ${await page.getAttribute("html", "lang")}`);
    const phone = ((await page.textContent("#customer-phone")) || "").replace(/\s/g, "");
    check(phone === lang.e164, `the checkout got ${phone} for ${lang.phone}`);
    await axe(page, `sandbox ${lang.code} ${label}`);
    await shot(page, `checkout-${lang.code}-${label}`);
    await Promise.all([page.waitForURL(/\/return\//), page.click("button[value=approve]")]);
    const h1 = (await page.textContent("h1")) || "";
    check(h1.includes(lang.paid), `paid page says ${JSON.stringify(h1)}`);
    check((await page.getAttribute("html", "lang")) === lang.code, "paid page lang");
    await axe(page, `paid ${lang.code} ${label}`);
    await shot(page, `paid-${lang.code}-${label}`);
  } finally {
    await ctx.close();
  }
}


// A visitor reading English on a Spanish browser walks away from the checkout: the page
// they come back to is still English, the checkout page was too.
async function abandon(browser) {
  const ctx = await context(browser, { locale: "es-CO", viewport: PHONE });
  const page = await ctx.newPage();
  try {
    await page.goto(`${BASE}/c/demo?lang=en`);
    await fill(page, { name: "Fabio Luna", email: "fabio.abandon@example.com", phone: "+57 300 123 4567" });
    await Promise.all([page.waitForURL(/\/sandbox\/pay\//), page.click("button[type=submit]")]);
    check((await page.getAttribute("html", "lang")) === "en", "the checkout is in English");
    await Promise.all([page.waitForNavigation(), page.click("button[value=abandon]")]);
    check((await page.getAttribute("html", "lang")) === "en", `back in ${await page.getAttribute("html", "lang")} at ${page.url()}`);
    check((await page.locator("button[type=submit]").count()) >= 1, `a way to pay again at ${page.url()}`);
    await axe(page, "after abandon");
    await shot(page, "abandoned-en");
  } finally {
    await ctx.close();
  }
}

async function declined(browser, lang) {
  const ctx = await context(browser, { locale: lang.locale });
  const page = await ctx.newPage();
  try {
    await page.goto(`${BASE}/c/demo`);
    await fill(page, { name: "Beto Díaz", email: `beto.${lang.code}@example.com`, phone: "+57 300 123 4567" });
    await Promise.all([page.waitForURL(/\/sandbox\/pay\//), page.click("button[type=submit]")]);
    await Promise.all([page.waitForURL(/\/return\//), page.click("button[value=decline]")]);
    const h1 = (await page.textContent("h1")) || "";
    check(h1.includes(lang.declined), `declined page says ${JSON.stringify(h1)}`);
    await axe(page, `declined ${lang.code}`);
    await shot(page, `declined-${lang.code}`);
  } finally {
    await ctx.close();
  }
}

// A checkout opened and not finished: the return page says pending, checks by itself
// (a script, never a meta refresh) and offers a "check again" button.
async function pending(browser) {
  const ctx = await context(browser, {});
  const page = await ctx.newPage();
  try {
    await page.goto(`${BASE}/c/demo`);
    await fill(page, { name: "Carla Gómez", email: "carla.pending@example.com", phone: "+57 300 123 4567" });
    await Promise.all([page.waitForURL(/\/sandbox\/pay\//), page.click("button[type=submit]")]);
    // The sandbox shows the attempt's reference, which is its id.
    const attempt = ((await page.textContent("dl.prefill code")) || "").trim();
    await page.goto(`${BASE}/return/sandbox?attempt=${attempt}`);
    check((await page.getAttribute(".result", "data-status")) === "pending", "pending page");
    check((await page.locator("meta[http-equiv]").count()) === 0, "no meta refresh");
    check((await page.locator("a.button").count()) >= 1, "a check-again button");
    await axe(page, "pending");
    await shot(page, "pending-es");
  } finally {
    await ctx.close();
  }
}

// Errors: the summary takes the focus, the title counts them, each link reaches its
// field, and fixing them completes the journey.
async function validation(browser, viewport, label) {
  const ctx = await context(browser, { viewport, locale: "en-US" });
  const page = await ctx.newPage();
  try {
    await page.goto(`${BASE}/c/demo`);
    await page.fill("#name", "A");
    await page.fill("#email", "not-an-email");
    await page.fill("#phone", "+57 300 123 4567");
    await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
    await page.waitForSelector(".error-summary");
    const title = await page.title();
    check(/^2 errors: /.test(title), `title ${JSON.stringify(title)}`);
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    check(focused === "error-summary", `focus is on ${JSON.stringify(focused)}`);
    await axe(page, `errors ${label}`);
    await shot(page, `errors-en-${label}`);
    await page.click('.error-summary a[href="#email"]');
    const onEmail = await page.evaluate(() => document.activeElement && document.activeElement.id);
    check(onEmail === "email", `the summary link focuses ${JSON.stringify(onEmail)}`);
    await page.fill("#name", "Ana Pérez");
    await page.fill("#email", `fixed.${label}@example.com`);
    await Promise.all([page.waitForURL(/\/sandbox\/pay\//), page.click("button[type=submit]")]);
  } finally {
    await ctx.close();
  }
}

async function noScript(browser) {
  const ctx = await context(browser, { js: false, viewport: PHONE });
  const page = await ctx.newPage();
  try {
    await page.goto(`${BASE}/c/demo`);
    await fill(page, { name: "Dora Ruiz", email: "dora.nojs@example.com", phone: "+57 300 123 4567" });
    await Promise.all([page.waitForURL(/\/sandbox\/pay\//), page.click("button[type=submit]")]);
    await Promise.all([page.waitForURL(/\/return\//), page.click("button[value=approve]")]);
    check((await page.getAttribute(".result", "data-status")) === "approved", "paid without scripts");
  } finally {
    await ctx.close();
  }
}

async function otherPages(browser) {
  const ctx = await context(browser, {});
  const page = await ctx.newPage();
  try {
    const missing = await page.goto(`${BASE}/c/no-such-offer`);
    check(missing.status() === 404, `404 page answered ${missing.status()}`);
    await axe(page, "404");
    await page.goto(`${BASE}/admin/login`);
    await axe(page, "admin login");
    await shot(page, "admin-login");
    await signIn(page);
    await axe(page, "admin");
    await shot(page, "admin");
    // What the README shows of /admin: one offer's link, snippet, copy button and preview.
    const section = page.locator("section.embed-offer", { hasText: "/c/demo" });
    await section.locator("iframe").scrollIntoViewIfNeeded();
    // The preview is the snippet at work: embed.js sizes it, then the layout holds still.
    await page.waitForFunction(() => {
      const f = document.querySelector("#embed-demo iframe");
      return f && f.style.height !== "";
    }, null, { timeout: 10000 });
    await page.waitForTimeout(300);
    fs.mkdirSync(SHOTS, { recursive: true });
    await section.screenshot({ path: path.join(SHOTS, "admin-embed.png") });
    await page.click('button[data-copy="snippet-demo"]');
    await page.waitForFunction(() => document.querySelector("#embed-demo .copied").textContent !== "", null, { timeout: 5000 }).catch(() => {});
    const said = await page.textContent("#embed-demo .copied");
    check(said === "Copiado." || said === "Seleccionado: pulsa Ctrl+C para copiar.", `the copy button says ${JSON.stringify(said)}`);
  } finally {
    await ctx.close();
  }
}


async function signIn(page) {
  await page.goto(`${BASE}/admin/login`);
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForURL(/\/admin(\?|$)/), page.click("button[type=submit]")]);
}

// A marketing page (served by the browser itself, on an origin of its own) around what
// the marketer pasted from /admin.
function marketingPage(snippet) {
  return `<!doctype html><html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Mi tienda</title></head>
<body style="margin:0;font-family:sans-serif"><header style="padding:1rem;background:#222;color:#fff">
<h1 style="margin:0">Mi tienda en WordPress</h1></header>
<main style="max-width:40rem;margin:1rem auto;padding:0 1rem"><h2>Inscríbete al curso</h2>
${snippet}
<p>Pie de página de la tienda.</p></main></body></html>`;
}

async function frameHeights(page) {
  // Only once embed.js has sized it: at the snippet's own height a frame's scrollHeight
  // can never be below it, so the two would match before anything ran.
  const outer = await page.$eval("iframe[data-leadgate-embed]", (f) => (f.style.height ? Math.round(f.getBoundingClientRect().height) : -5));
  const frame = page.frames().find((f) => f.url().includes("/c/embedded"));
  const inner = frame ? await frame.evaluate(() => document.documentElement.scrollHeight) : -1;
  return { outer, inner, frame };
}

async function waitFitted(page, what) {
  let h = {};
  for (let i = 0; i < 50; i++) {
    h = await frameHeights(page);
    if (h.frame && h.inner > 200 && Math.abs(h.outer - h.inner) <= 2) return h;
    await page.waitForTimeout(100);
  }
  const urls = page.frames().map((f) => f.url());
  throw new Error(`${what}: the frame is ${h.outer} px for ${h.inner} px of content (frames: ${urls.join(", ")})`);
}

// The embed: the snippet from /admin on an allowed site sizes itself to the form, carries
// the page's campaign and referrer, and the journey completes; another site is refused.
async function embed(browser) {
  const ctx = await context(browser, { viewport: PHONE });
  const page = await ctx.newPage();
  try {
    await signIn(page);
    const snippets = await page.$$eval("textarea", (ts) => ts.map((t) => t.value));
    const snippet = snippets.find((v) => v.includes("/c/embedded?") && v.includes("data-leadgate-embed"));
    check(snippet, `admin shows the embedded offer's snippet: ${JSON.stringify(snippets)}`);
    await ctx.route(`${ALLOWED}/**`, (r) => r.fulfill({ contentType: "text/html; charset=utf-8", body: marketingPage(snippet) }));
    await ctx.route(`${DENIED}/**`, (r) => r.fulfill({ contentType: "text/html; charset=utf-8", body: marketingPage(snippet) }));

    await page.goto(`${ALLOWED}/curso/?utm_source=wordpress&utm_campaign=lanzamiento&gclid=G-123`, { referer: "https://www.google.com/" });
    const first = await waitFitted(page, "first load");
    // What the marketing page knew of the visit is in the form's hidden fields.
    const hidden = await first.frame.$$eval("form input[type=hidden]", (is) => Object.fromEntries(is.map((i) => [i.name, i.value])));
    const seen = JSON.stringify(hidden);
    check(hidden.utm_source === "wordpress", `utm carried: ${seen}`);
    check(hidden.utm_campaign === "lanzamiento", `campaign carried: ${seen}`);
    check(hidden.gclid === "G-123", `gclid carried: ${seen}`);
    check((hidden.referrer || "").startsWith("https://www.google.com"), `referrer carried: ${seen}`);
    await shot(page, "embed-wordpress");
    // More content in the form: the frame follows.
    await first.frame.evaluate(() => {
      const d = document.createElement("div");
      d.style.height = "400px";
      document.body.appendChild(d);
    });
    const grown = await waitFitted(page, "after growing");
    check(grown.outer >= first.outer + 350, `the frame grew from ${first.outer} to ${grown.outer}`);

    // The seller, its links and the consent box pass axe inside the frame too.
    check((await grown.frame.textContent(".seller-name")) === "Academia Ejemplo", "the seller is named");
    await axe(grown.frame, "embedded form");
    await fill(grown.frame, { name: "Eva Marín", email: "embed.journey@example.com", phone: "+57 300 123 4567" });
    await grown.frame.check("#consent");
    await Promise.all([page.waitForURL(/\/sandbox\/pay\//), grown.frame.click("button[type=submit]")]);
    await Promise.all([page.waitForURL(/\/return\//), page.click("button[value=approve]")]);
    check((await page.getAttribute(".result", "data-status")) === "approved", "the embedded journey is paid");

    // Another site: the browser refuses to show the form in its frame.
    const refused = [];
    page.on("console", (m) => refused.push(m.text()));
    await page.goto(`${DENIED}/curso/`);
    await page.waitForTimeout(1500);
    const framed = page.frames().find((f) => f !== page.mainFrame());
    const form = framed ? await framed.$("#name").catch(() => null) : null;
    check(!form, "a site not listed cannot frame the form");
  } finally {
    await ctx.close();
  }
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env("CHROMIUM"),
    // The marketing page is served by the browser itself, which Chromium counts as a public
    // site: without this it refuses that page's requests to leadgate on loopback.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-features=LocalNetworkAccessChecks"],
  });
  try {
    for (const lang of LANGS) {
      for (const [viewport, label] of [[PHONE, "phone"], [DESKTOP, "desktop"]]) {
        await run(`journey ${lang.code} ${label}`, () => journey(browser, lang, viewport, label));
      }
      await run(`declined ${lang.code}`, () => declined(browser, lang));
    }
    await run("abandon keeps the language", () => abandon(browser));
    await run("pending", () => pending(browser));
    await run("validation phone", () => validation(browser, PHONE, "phone"));
    await run("validation desktop", () => validation(browser, DESKTOP, "desktop"));
    await run("no javascript", () => noScript(browser));
    await run("other pages", () => otherPages(browser));
    await run("embed", () => embed(browser));
  } finally {
    await browser.close();
  }
  console.log(results.join("\n"));
  if (failures.length) {
    console.error(failures.join("\n"));
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
