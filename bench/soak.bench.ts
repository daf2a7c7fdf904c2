/**
 * A long session: N questions in a row through the chat's host-side logic (ChatSession, as the
 * extension runs it) and the worker, follow-ups and new chats mixed, with the host's heap and RSS
 * and the worker's RSS sampled as it goes. Prints the growth.
 * Run: node --import tsx bench/soak.bench.ts [--questions 200] (after `npm run build`)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChatSession } from '../src/extension/chat/chatSession';
import { demoModelDir } from '../src/pipeline/engine/engine';
import { EngineClient } from '../src/worker/engineClient';

const { values } = parseArgs({ options: { questions: { type: 'string', default: '200' } } });
const total = Number(values.questions);
const image = join(__dirname, '..', 'media', 'samples', 'pipeline-diagram.svg');
const spec = { modelDir: demoModelDir(), ep: 'cpu' as const };

function workerRssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const client = new EngineClient({ workerPath: join(__dirname, '..', 'dist', 'worker.js'), idleTimeoutMs: 0 });
  let answers = 0;
  const chat = new ChatSession(
    { ask: (p, hooks) => client.ask({ ...p, ...spec }, hooks), newConversation: () => client.newConversation(spec) },
    (e) => void (e.type === 'answerEnd' && answers++),
    () => ({ maxNewTokens: 16, temperature: 0 }),
  );
  chat.images = [image];
  const rows: string[] = [];
  let first: { heap: number; rss: number; worker: number } | undefined;
  const started = Date.now();
  for (let i = 1; i <= total; i++) {
    if (i % 4 === 1) await chat.newChat(); // a new chat every 4 questions, PruMerge and PruMerge+ in turn
    await chat.ask(`Question ${i}: what is in the picture?`, {
      reduce: { kind: Math.floor(i / 4) % 2 ? 'prumerge+' : 'prumerge' },
      detail: 'auto',
    });
    if (i === 10 || i % 50 === 0) {
      (globalThis as { gc?: () => void }).gc?.();
      const now = {
        heap: process.memoryUsage().heapUsed / 2 ** 20,
        rss: process.memoryUsage().rss / 2 ** 20,
        worker: workerRssMb(client.pid),
      };
      first ??= now;
      rows.push(
        `${String(i).padStart(4)}  host heap ${now.heap.toFixed(1)} MB  host RSS ${now.rss.toFixed(0)} MB  worker RSS ${now.worker.toFixed(0)} MB`,
      );
    }
  }
  await client.dispose();
  if (answers !== total) throw new Error(`${answers} of ${total} questions answered`);
  console.log(`${total} questions in ${((Date.now() - started) / 1000).toFixed(1)} s (demo model, 16 tokens each, a new chat every 4):`);
  for (const r of rows) console.log(r);
}

void main();
