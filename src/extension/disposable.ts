/**
 * A base for objects that own VS Code resources (as VS Code's own media-preview does): everything
 * handed to `_register` is disposed with the object, once, and `isDisposed` lets code that awaited
 * something check whether there is still anyone to answer.
 */
import * as vscode from 'vscode';

export abstract class Disposable implements vscode.Disposable {
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
  }

  protected _register<T extends vscode.Disposable>(d: T): T {
    if (this.disposed) d.dispose();
    else this.disposables.push(d);
    return d;
  }
}
