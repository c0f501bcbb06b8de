// The README's TypeScript example, run as written against the real X-Ray (XRAY_TEST_ENDPOINT):
// a Node pipeline instrumented from the README alone must be stored, explained and found by
// patterns as a Python one is. Only the endpoint and the pipeline's name are swapped in, and the
// functions the example leaves to the reader (llm, search, compatible) are defined.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGE = fileURLToPath(new URL("..", import.meta.url));
const endpoint = process.env.XRAY_TEST_ENDPOINT;
const skip = endpoint ? false : "XRAY_TEST_ENDPOINT is not set (tests/test_sdk_js.py sets it to a real X-Ray)";

const STUBS = `
const title = "Slim phone case for the X12";
const llm = async (text) => text.toLowerCase().split(" ").slice(0, 3);
const search = async (keywords) => Array.from({ length: 40 }, (_, i) => ({ asin: "B0" + String(i).padStart(8, "0"), category: i % 4 ? "laptop_stand" : "phone_case" }));
const compatible = (c) => c.category === "phone_case";
`;

function readmeExample() {
  const readme = readFileSync(join(PACKAGE, "..", "README.md"), "utf8");
  const section = readme.split("## Instrumenting a Node.js pipeline (the TypeScript SDK)")[1];
  assert.ok(section, "the README has no TypeScript SDK section");
  return section.split("```ts\n")[1].split("```")[0];
}

// The same functions, declared with types, for the type check.
const DECLARATIONS = `
interface Candidate { asin: string; category: string }
declare const title: string;
declare function llm(text: string): Promise<string[]>;
declare function search(keywords: string[]): Promise<Candidate[]>;
declare function compatible(c: Candidate): boolean;
`;

/** Run `write(folder)` in a fresh folder inside the package (so that the example's
 * `import ... from "xray-decisions-sdk"` resolves to this package), then remove it. */
function inPackage(write) {
  const folder = mkdtempSync(join(PACKAGE, "test", ".readme-"));
  try {
    return write(folder);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

test("the README's TypeScript example type-checks against the package's declarations (strict)", () => {
  const [imports, ...rest] = readmeExample().split("\n");
  const result = inPackage((folder) => {
    writeFileSync(join(folder, "example.ts"), `${imports}\n${DECLARATIONS}\n${rest.join("\n")}\nexport {};\n`);
    const options = { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] };
    writeFileSync(join(folder, "tsconfig.json"), JSON.stringify({ compilerOptions: options, files: ["example.ts"] }));
    const tsc = join(PACKAGE, "node_modules", "typescript", "bin", "tsc");
    return spawnSync(process.execPath, [tsc, "-p", join(folder, "tsconfig.json")], { encoding: "utf8", timeout: 120_000 });
  });
  assert.equal(result.status, 0, result.stdout + result.stderr);
});

async function get(path) {
  const response = await fetch(endpoint + path);
  assert.equal(response.status, 200, `${path}: ${response.status}`);
  return response.json();
}

test("the README's TypeScript example runs as written, and its run is shown, explained and found by patterns", { skip }, async () => {
  const pipeline = `readme-js-${randomUUID().slice(0, 8)}`;
  const code = readmeExample();
  assert.match(code, /"competitor_selection"/);
  assert.match(code, /"http:\/\/127\.0\.0\.1:8000"/);
  const [imports, ...rest] = code.split("\n");
  const body = rest.join("\n").replaceAll('"http://127.0.0.1:8000"', JSON.stringify(endpoint)).replaceAll('"competitor_selection"', JSON.stringify(pipeline));
  const stats = inPackage((folder) => {
    writeFileSync(join(folder, "example.mjs"), `${imports}\n${STUBS}\n${body}\nawait xray.close(10_000);\nconsole.log(JSON.stringify(xray.stats()));\n`);
    const result = spawnSync(process.execPath, [join(folder, "example.mjs")], { encoding: "utf8", timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout;
  });

  const { runs } = await get(`/api/v1/runs?pipeline=${pipeline}`);
  assert.equal(runs.length, 1, `the example's client: ${stats}`);
  const view = await get(`/api/v1/runs/${runs[0].run_id}`);
  assert.deepEqual(view.steps.map((s) => s.name), ["generate_keywords", "search_catalogue", "compat_filter"]);
  assert.deepEqual(view.steps[2].metrics, { candidates_in: 40, candidates_out: 10, drop_ratio: 0.75 });
  assert.deepEqual(view.steps[0].metrics, { model: "gpt-x", temperature: 0.2 });
  assert.deepEqual(view.steps[1].input, { keywords: ["slim", "phone", "case"] });
  const explained = await get(`/api/v1/runs/${runs[0].run_id}/explain`);
  assert.ok(Array.isArray(explained.findings));
  const patterns = await get(`/api/v1/patterns?pipeline=${pipeline}&step_type=filter&min_drop_ratio=0.5`);
  assert.equal(patterns.bad_runs, 1);
});
