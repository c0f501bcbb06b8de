// One run from a Node pipeline, for tests/test_sdk_js.py to read back with the `xray` command: a
// filter with a typo in its type, a filter that drops most of its candidates with reasons and
// ids, and an llm step; prints the run's id.
import { Client } from "../../dist/esm/index.js";

const xray = new Client(process.env.XRAY_ENDPOINT, { logger: () => {} });
process.removeAllListeners("warning"); // the typo is on purpose
const run = xray.startRun(process.env.PIPELINE, "ticket-1", { tags: { feed: "B" } });
run.step("generate_keywords", "llm", (step) => step.model("gpt-x", 0.2).output(["slim", "case"]));
run.step("skills", "fitler", (step) => step.candidates(10, 4));
run.step("compat_filter", "filter", (step) => {
  for (let i = 0; i < 50; i++) {
    if (i < 2) step.keep({ sku: `S${i}` });
    else step.reject({ sku: `S${i}` }, i % 2 ? "category_mismatch" : "too_expensive");
  }
  step.why("kept same-category candidates");
}, { idField: "sku" });
run.finish({ chosen: "S0" });
await xray.close(10_000);
console.log(run.runId);
