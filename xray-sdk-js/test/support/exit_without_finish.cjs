// The same pipeline through the CommonJS build: `require()` works as `import` does.
const { Client } = require("../../dist/cjs/index.js");

const xray = new Client(process.env.URL, { shutdownTimeoutMs: Number(process.env.SHUTDOWN_MS ?? 1000), logger: () => {} });
const run = xray.startRun("no_finish_cjs", "B0X");
for (let i = 0; i < 5; i++) run.step(`s${i}`, "search", (step) => step.metrics({ results: i }));
console.log("pipeline done");
