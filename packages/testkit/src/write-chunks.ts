/** What `writeChunks` writes to: a node stream, a response, a grpc-js call. */
export interface ChunkSink<T> {
  write(chunk: T): boolean;
  once(event: 'drain', listener: () => void): unknown;
  end(): unknown;
}

/**
 * Writes `count` copies of `chunk` to `sink` as fast as its backpressure allows, then ends it (an
 * upload or a download of a known size). `written` says how many were handed over so far.
 *
 * @example
 * const upload = writeChunks(stream, { chunk: Buffer.alloc(64 * 1024), count: 64 }); // 4 MiB
 */
export function writeChunks<T>(sink: ChunkSink<T>, options: { chunk: T; count: number }): { readonly written: number } {
  const progress = { written: 0 };
  const pump = (): void => {
    while (progress.written < options.count) {
      progress.written++;
      if (!sink.write(options.chunk)) {
        sink.once('drain', pump);
        return;
      }
    }
    sink.end();
  };
  pump();
  return progress;
}
