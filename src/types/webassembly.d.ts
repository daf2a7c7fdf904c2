// The part of the WebAssembly JS API that src/pipeline/reduce/mergeKernels.ts uses. TypeScript ships these
// types only in lib.dom, which the Node-side code must not pull in, and @types/node 20 lacks them.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
}
