/**
 * What the chat does with its attached images before any question: decodes each (so that a bad
 * or tiny one is said so at once), reads its crops into the worker's vision cache at the detail the
 * question will use, and counts the visual tokens they make for the picker's labels.
 */
import type { Detail } from '../../shared/reduceMode';
import { parseReading } from '../../shared/reduceMode';
import { detailForImages, type ImageTokenCount, NO_DETAILS } from '../../shared/reductionChoices';
import { lowResolutionNote } from '../../shared/imageNotes';
import type { ChatEvent, ImageReading } from '../../shared/webviewMessages';
import type { EngineService } from '../engineService';
import { type AttachedImage, totalTokens } from './attachedImages';

/** What the chat view gives the reader: its images as they are now, and its ways to speak. */
export interface AheadHost {
  /** The images attached now, in the question's order. */
  readonly images: () => readonly AttachedImage[];
  readonly nameOf: (path: string) => string;
  readonly describeError: (e: unknown) => string;
  readonly post: (event: ChatEvent) => void;
  /** Posts the chat's whole state again (a warning, a count). */
  readonly postState: () => Promise<void>;
  readonly defaultReduce: () => string;
}

export class ImagesAhead {
  /** The images' tokens the worker counted (tiled layouts), by model folder and path. */
  private readonly counted = new Map<string, ImageTokenCount>();

  constructor(
    private readonly engine: EngineService,
    private readonly host: AheadHost,
  ) {}

  /**
   * Decodes an attached image in the worker, so that one that cannot be read, or is far below the
   * model's resolution, is said so now rather than after a question. Starting the worker for it
   * costs nothing the question would not.
   */
  async check(image: AttachedImage): Promise<void> {
    const name = this.host.nameOf(image.path);
    try {
      const size = await this.engine.checkImage(image.path);
      const side = this.engine.modelFacts()?.imageSize;
      image.warning = (side ? lowResolutionNote(name, size, side) : undefined) ?? null;
      image.readable = true;
    } catch (e) {
      image.warning = `${this.host.describeError(e)}.`.replace(/\.\.$/, '.');
    }
    if (this.host.images().includes(image) && image.warning) await this.host.postState();
    if (this.host.images().includes(image) && image.readable) this.readAhead();
  }

  /** The detail a question reads each attached image at (one crop each of several, for LLaVA-OneVision). */
  detailNow(): Detail {
    let asked: Detail = 'auto';
    try {
      asked = parseReading(this.host.defaultReduce()).detail;
    } catch {
      // a setting the picker does not offer: the model's own layout
    }
    return detailForImages(asked, this.host.images().length, this.engine.modelFacts()?.details ?? NO_DETAILS);
  }

  /** Starts reading ahead each readable image not read at the detail a question needs now. */
  readAhead(): void {
    const detail = this.detailNow();
    for (const image of this.host.images()) {
      if (!image.readable || image.early?.detail === detail) continue;
      image.early?.stop.abort();
      image.early = { detail, stop: new AbortController() };
      image.reading = null;
      void this.readEarly(image, image.early);
    }
  }

  /**
   * Reads an attached image's crops in the worker now, behind any answer running, so that the
   * question finds them read (the vision tower is most of the wait on a CPU). Progress shows
   * under the image; a question asked meanwhile reads the crops not yet done itself.
   */
  private async readEarly(image: AttachedImage, early: NonNullable<AttachedImage['early']>): Promise<void> {
    const shown = (r: ImageReading): void => {
      image.reading = r;
      if (this.host.images().includes(image)) this.host.post({ type: 'imageReading', key: image.path, ...r });
    };
    try {
      await this.engine.prepare(image.path, early.detail, (done, total) => shown({ done, total }), early.stop.signal);
      // the tower's time per crop is known now: the picker's estimates follow it
      if (this.host.images().includes(image) && this.engine.modelFacts()?.tiled) {
        this.counted.delete(this.countKey(image.path));
        await this.countTokens();
      }
    } catch (e) {
      if (early.stop.signal.aborted) return;
      // the question will read the image itself, and say what is wrong if it still is
      this.engine.log.appendLine(`reading ${this.host.nameOf(image.path)} ahead of the question failed: ${this.host.describeError(e)}`);
      image.reading = null;
      if (this.host.images().includes(image)) await this.host.postState();
    }
  }

  /** The attached images' visual tokens together: the model's patch count each, or for tiled layouts, what the worker counted. */
  tokenCount(): ImageTokenCount | undefined {
    const facts = this.engine.modelFacts();
    if (!facts) return undefined;
    if (this.host.images().length === 0) return facts.tiled ? undefined : { total: facts.patches, subImages: 1 };
    const oneCrop = !facts.tiled || this.detailNow() === 'low';
    return totalTokens(
      this.host.images().map((i) => (oneCrop ? { total: facts.patches, subImages: 1 } : this.counted.get(this.countKey(i.path)))),
    );
  }

  private countKey(path: string): string {
    return `${this.engine.spec().modelDir}\u0000${path}`;
  }

  /**
   * Asks the worker how many tokens the attached images make with a tiled layout (it depends on
   * each image's size). Only once an image is attached: the user is about to ask, so starting the
   * worker now costs nothing they would not wait for anyway.
   */
  async countTokens(): Promise<void> {
    if (!this.engine.modelFacts()?.tiled || this.tokenCount()) return;
    let counted = false;
    for (const image of this.host.images()) {
      const key = this.countKey(image.path);
      if (this.counted.has(key)) continue;
      try {
        this.counted.set(key, await this.engine.imageTokens(image.path));
        counted = true;
      } catch {
        // the question will say what is wrong with the image or the model
      }
    }
    if (counted) await this.host.postState();
  }
}
