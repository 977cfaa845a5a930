// Invokes functions of a faas gateway with the AWS SDK for JavaScript v3's Lambda client,
// pointed at the gateway by its endpoint only, and prints what each call gave, by name
// (tests/tests/local/lambda_invoke.rs reads it). Usage: node invoke.mjs ENDPOINT
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";

const client = new LambdaClient({
  endpoint: process.argv[2],
  region: "us-east-1",
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
  maxAttempts: 1,
});
const text = (bytes) => (bytes ? new TextDecoder().decode(bytes) : null);
const out = {};

async function call(key, input) {
  try {
    const r = await client.send(new InvokeCommand(input));
    out[key] = {
      status: r.StatusCode,
      error: r.FunctionError ?? null,
      payload: text(r.Payload),
      log: r.LogResult ? Buffer.from(r.LogResult, "base64").toString() : null,
      version: r.ExecutedVersion ?? null,
    };
  } catch (e) {
    out[key] = { typed: e.name, message: e.message, http: e.$metadata?.httpStatusCode };
  }
}

const payload = (value) => new TextEncoder().encode(JSON.stringify(value));
await call("ok", { FunctionName: "orders", Payload: payload({ n: 3 }), LogType: "Tail" });
await call("fail", { FunctionName: "orders", Payload: payload({ fail: true }) });
await call("missing", { FunctionName: "nope", Payload: payload({}) });
await call("dry", { FunctionName: "orders", InvocationType: "DryRun" });
await call("wasm", { FunctionName: "hello", Payload: payload({ a: 1 }) });
console.log(JSON.stringify(out));
