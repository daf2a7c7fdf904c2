/** Writes the demo model to models/demo (run by `npm run build`); see src/builder/demoModel.ts. */
import { resolve } from 'node:path';
import { makeDemoModel } from '../src/builder/demoModel';

const out = resolve(__dirname, '..', 'models', 'demo');
makeDemoModel(out).then(
  (m) => {
    const bytes = Object.values(m.files).reduce((n, f) => n + f.bytes, 0);
    console.log(`demo model: ${out} (${(bytes / 2 ** 20).toFixed(1)} MiB)`);
  },
  (e: unknown) => {
    console.error(`make-demo-model: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);
