/** The webview side of postMessage and state, typed by the protocol module. */

interface VsCodeApi<State> {
  postMessage(message: unknown): void;
  getState(): State | undefined;
  setState(state: State): void;
}

declare function acquireVsCodeApi<State>(): VsCodeApi<State>;

export function vscodeApi<State, Outgoing>(): { post(m: Outgoing): void; getState(): State | undefined; setState(s: State): void } {
  const api = acquireVsCodeApi<State>();
  return { post: (m) => api.postMessage(m), getState: () => api.getState(), setState: (s) => api.setState(s) };
}

/** The state the host put in <body data-state="...">. */
export function initialState<T>(): T {
  return JSON.parse(document.body.dataset['state'] ?? '{}') as T;
}

/** document.createElement with attributes and children, for readable DOM building. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Record<string, string>,
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K];
export function el(tag: string, attrs?: Record<string, string>, ...children: (Node | string)[]): HTMLElement;
export function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}
