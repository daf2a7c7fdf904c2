// Times llama.cpp (node-llama-cpp, CPU) on a GGUF: for each prompt length, the prefill of that
// many tokens from an empty context, then decoding --tokens tokens greedily. Run in a process of
// its own by bench.ts, so that its peak memory is its own. Prints one JSON line.
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    lib: { type: 'string' },
    model: { type: 'string' },
    prompts: { type: 'string' },
    tokens: { type: 'string', default: '16' },
    // 0: llama.cpp's own default, as a user of node-llama-cpp gets it
    threads: { type: 'string', default: '0' },
    context: { type: 'string', default: '2048' },
    mmap: { type: 'boolean', default: false },
  },
});
const { getLlama } = await import(pathToFileURL(join(values.lib, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href);
const asked = Number(values.threads);
const llama = await getLlama({ gpu: false, ...(asked > 0 ? { maxThreads: asked } : {}), logLevel: 'error', build: 'never' });
const model = await llama.loadModel({ modelPath: values.model, useMmap: values.mmap, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: Number(values.context),
  batchSize: 512,
  ...(asked > 0 ? { threads: asked } : {}),
});
const threads = context.currentThreads ?? llama.maxThreads;
const runs = [];
// a warm-up, as our bench has one
for (const [i, n] of [16, ...values.prompts.split(',').map(Number)].entries()) {
  const sequence = context.getSequence();
  const prompt = Array.from({ length: n }, (_, j) => 300 + ((j * 7919) % 30000)); // any ids: text plays no part
  let t = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  const prefillMs = performance.now() - t;
  const tokens = Number(values.tokens);
  t = performance.now();
  let made = 0;
  for await (const token of sequence.evaluate([prompt[n - 1]], { temperature: 0 })) {
    void token;
    if (++made === tokens) break;
  }
  const decodeTokensPerSecond = (tokens / (performance.now() - t)) * 1000;
  sequence.dispose();
  if (i > 0) runs.push({ promptTokens: n, prefillMs, prefillTokensPerSecond: (n / prefillMs) * 1000, decodeTokensPerSecond });
}
const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
process.stdout.write(`${JSON.stringify({ engine: 'llama.cpp', threads, mmap: values.mmap, runs, peakRssMb })}\n`);
await context.dispose();
await model.dispose();
