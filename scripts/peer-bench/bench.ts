/**
 * Our engine and llama.cpp side by side, in one run, on this machine: `npm run bench:peer`.
 * llama.cpp comes from node-llama-cpp (its prebuilt CPU binary, installed from npm into the
 * cache folder on first use; not a dependency of the project) and runs a synthetic GGUF with Q4_0
 * weights of the same LLaMA shape as our synthetic int4 model. Both fill the same prompt lengths
 * (ours: LLaVA's prompt with all 576 visual tokens, and with topk:32) and decode the same number
 * of tokens. By default each engine picks its own thread count, as a user gets it; --threads N
 * sets both. node-llama-cpp takes no image, so only the language model is compared: the visual
 * rows are positions to fill like any other.
 *
 * Usage: npm run bench:peer [-- --shape llava-1.5-7b --tokens 16 --threads N]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { llavaConfigFromJson } from '../../src/families/llavaConfig';
import { shapeConfig } from '../../src/builder/shapes';
import { writeSyntheticGguf } from './gguf';

const NODE_LLAMA_CPP = 'node-llama-cpp@3.22.1';
const ROOT = join(__dirname, '..', '..');

const { values } = parseArgs({
  options: {
    shape: { type: 'string', default: 'llava-1.5-7b' },
    tokens: { type: 'string', default: '16' },
    threads: { type: 'string', default: '0' },
  },
});

const cache = join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'prumerge-vision', 'peer-bench');

function installPeer(): string {
  const lib = join(cache, 'lib');
  if (existsSync(join(lib, 'node_modules', 'node-llama-cpp', 'package.json'))) return lib;
  mkdirSync(lib, { recursive: true });
  writeFileSync(join(lib, 'package.json'), '{ "name": "prumerge-peer-bench", "private": true }\n');
  process.stderr.write(`installing ${NODE_LLAMA_CPP} into ${lib} (prebuilt llama.cpp, nothing compiled)\n`);
  execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', NODE_LLAMA_CPP], {
    cwd: lib,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
  });
  return lib;
}

function gguf(shape: string): string {
  const t = llavaConfigFromJson(shapeConfig(shape)).text;
  const path = join(cache, `${shape}-q4_0.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(cache, { recursive: true });
  process.stderr.write(`writing a synthetic ${shape} GGUF (Q4_0) to ${path}\n`);
  writeSyntheticGguf(path, {
    vocab: t.vocabSize,
    hidden: t.hiddenSize,
    layers: t.numLayers,
    heads: t.numHeads,
    kvHeads: t.numKvHeads,
    ffn: t.intermediateSize,
    context: t.maxPositionEmbeddings,
    ropeTheta: t.ropeTheta,
  });
  return path;
}

interface Run {
  readonly promptTokens: number;
  readonly prefillMs: number;
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
}

function node(args: string[]): string {
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited with ${r.status}`);
  return r.stdout.trim().split('\n').pop()!;
}

function main(): void {
  const { shape, tokens, threads } = values;
  const lib = installPeer();
  const model = gguf(shape!);
  process.stderr.write(`ours: prumerge bench --shape ${shape} --dtype int4 (the first run builds the model once)\n`);
  const ours = JSON.parse(
    node([
      join(ROOT, 'bin', 'prumerge.js'),
      'bench',
      '--shape',
      shape!,
      '--dtype',
      'int4',
      '--reps',
      '1',
      '--tokens',
      tokens!,
      '--threads',
      threads!,
      '--json',
    ]),
  );
  const mine: Run[] = [ours.runs['none'], ours.runs['topk:32']];
  const prompts = mine.map((r) => r.promptTokens).join(',');
  const peers = [false, true].map((mmap) => {
    process.stderr.write(`llama.cpp: ${NODE_LLAMA_CPP}, ${mmap ? 'mmap' : 'no mmap'}\n`);
    const args = [
      join(__dirname, 'llama.mjs'),
      '--lib',
      lib,
      '--model',
      model,
      '--prompts',
      prompts,
      '--tokens',
      tokens!,
      '--threads',
      threads!,
    ];
    return JSON.parse(node(mmap ? [...args, '--mmap'] : args)) as { runs: Run[]; peakRssMb: number; threads: number };
  });
  const peer = peers[0]!;
  const gb = (mib: number): string => `${((mib * 2 ** 20) / 1e9).toFixed(1)} GB`; // both engines report MiB
  const lines = [
    `| ${shape}, int4 vs Q4_0, ${tokens} tokens | ours | llama.cpp | ours / llama.cpp |`,
    '| --- | --- | --- | --- |',
    `| threads (${threads === '0' ? 'each its default' : 'both set'}) | ${ours.threads} | ${peer.threads} | |`,
  ];
  mine.forEach((r, i) => {
    const p = peer.runs[i]!;
    lines.push(
      `| prefill, ${r.promptTokens} tokens | ${(r.prefillMs / 1000).toFixed(2)} s (${r.prefillTokensPerSecond.toFixed(1)} tok/s) | ${(p.prefillMs / 1000).toFixed(2)} s (${p.prefillTokensPerSecond.toFixed(1)} tok/s) | ${(r.prefillTokensPerSecond / p.prefillTokensPerSecond).toFixed(2)}x speed |`,
    );
  });
  mine.forEach((r, i) => {
    const p = peer.runs[i]!;
    lines.push(
      `| decode after ${r.promptTokens} positions | ${r.decodeTokensPerSecond.toFixed(2)} tok/s | ${p.decodeTokensPerSecond.toFixed(2)} tok/s | ${(r.decodeTokensPerSecond / p.decodeTokensPerSecond).toFixed(2)}x |`,
    );
  });
  const ourRss = Math.max(...Object.values(ours.runs as Record<string, { peakRssMb: number }>).map((r) => r.peakRssMb));
  lines.push(`| peak RSS | ${gb(ourRss)} | ${gb(peer.peakRssMb)} (no mmap) / ${gb(peers[1]!.peakRssMb)} (mmap) | |`);
  const folder = statSync(model).size;
  process.stdout.write(
    `${lines.join('\n')}\n\n${ours.cpu.model}, ${ours.cpu.flags.join(' ')}; ${new Date().toISOString().slice(0, 10)}\n(GGUF ${(folder / 2 ** 30).toFixed(2)} GiB; llama.cpp figures are its run without mmap, the mmap run's speed was ${peers[1]!.runs.map((r) => r.decodeTokensPerSecond.toFixed(2)).join(' / ')} tok/s decode)\n`,
  );
}

main();
