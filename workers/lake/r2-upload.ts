/**
 * R2 requires every part of a multipart upload but the last to be the same size (≥ 5 MiB); 8 MiB
 * parts keep one part in memory at a time.
 */
const PART_BYTES = 8 << 20;

/**
 * Writes an object of unknown length to R2 with bounded memory: a plain PUT when it ends up smaller
 * than one part, a multipart upload otherwise. The object appears only when `close` resolves.
 */
export class R2Upload {
  private readonly bucket: R2Bucket;
  private readonly key: string;
  private readonly options: R2MultipartOptions;
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private upload: R2MultipartUpload | null = null;
  private readonly parts: R2UploadedPart[] = [];

  constructor(bucket: R2Bucket, key: string, options: R2MultipartOptions = {}) {
    this.bucket = bucket;
    this.key = key;
    this.options = options;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.chunks.push(bytes);
    this.buffered += bytes.byteLength;
    while (this.buffered >= PART_BYTES) {
      this.upload ??= await this.bucket.createMultipartUpload(this.key, this.options);
      this.parts.push(await this.upload.uploadPart(this.parts.length + 1, this.take(PART_BYTES)));
    }
  }

  /** Completes the object. */
  async close(): Promise<void> {
    const rest = this.take(this.buffered);
    if (!this.upload) {
      await this.bucket.put(this.key, rest, this.options);
      return;
    }
    if (rest.byteLength > 0) this.parts.push(await this.upload.uploadPart(this.parts.length + 1, rest));
    await this.upload.complete(this.parts);
  }

  /** Gives up: no object appears and the uploaded parts are released. */
  async abort(): Promise<void> {
    await this.upload?.abort();
  }

  private take(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const used = Math.min(head.byteLength, n - filled);
      out.set(head.subarray(0, used), filled);
      filled += used;
      if (used === head.byteLength) this.chunks.shift();
      else this.chunks[0] = head.subarray(used);
    }
    this.buffered -= n;
    return out;
  }
}
