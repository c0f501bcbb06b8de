// A pipeline that ends without finish(), close() or flush(): the process must still deliver its
// steps (the bounded flush at exit), and exit promptly when the collector never answers.
import { Client } from "../../dist/esm/index.js";

const xray = new Client(process.env.URL, { shutdownTimeoutMs: Number(process.env.SHUTDOWN_MS ?? 1000), logger: () => {} });
const run = xray.startRun("no_finish", "B0X");
for (let i = 0; i < 5; i++) run.step(`s${i}`, "search", (step) => step.metrics({ results: i }));
console.log("pipeline done");
