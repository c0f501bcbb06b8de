// A collector in its own process for the SDK benchmarks (as bench/sink.py): answers every request
// like a healthy X-Ray (`ok`), or accepts connections and never answers (`blackhole`). Prints its port.
import { createServer } from "node:http";

const mode = process.argv[2] ?? "ok";
const BODY = '{"accepted":0,"duplicates":0,"rejected":[],"contract_violations":[],"truncated":[]}';
const server = createServer((request, response) => {
  request.resume();
  if (mode === "blackhole") return; // hold the request forever
  request.on("end", () => {
    response.writeHead(request.url === "/api/v1/runs" ? 201 : 200, { "Content-Type": "application/json", "Content-Length": BODY.length });
    response.end(BODY);
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
