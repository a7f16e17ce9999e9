import { Duplex } from 'node:stream';

/** What the in-process peer of a `MemorySocket` reports as its address. */
export interface MemorySocketAddress {
  address: string;
  family: 'IPv4';
  port: number;
}

/**
 * One end of an in-process connection: a `Duplex` with the parts of `net.Socket` that
 * node:http, its `Agent` and `ws` call (`setTimeout`, `setNoDelay`, `setKeepAlive`, `ref`,
 * `unref`, `destroySoon`, addresses). Bytes written to one end are read from the other, with
 * backpressure: a write completes only when the peer's reader has room for it. Ending one
 * end is the peer's end of input (a FIN); destroying one end is the peer's end of input too,
 * and later writes from the peer are dropped, as bytes sent to a closed TCP connection are.
 */
export class MemorySocket extends Duplex {
  /** The peer end; set once by `memorySocketPair`. */
  peer: MemorySocket | null = null;
  /** Always false: an in-memory connection is open as soon as it exists. */
  readonly connecting = false;
  /** `true` when it stands for a TLS connection (an `https:` target), like `TLSSocket.encrypted`. */
  readonly encrypted: boolean | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily = 'IPv4';
  readonly localAddress: string;
  readonly localPort: number;
  /** The idle timeout in ms set with `setTimeout` (0: none), as on `net.Socket`. */
  timeout = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  /** The peer's write callback waiting until this end's reader has room. */
  private blockedPeerWrite: ((error?: Error | null) => void) | null = null;
  /** The peer has signalled the end of its output (ended or destroyed). */
  private inputEnded = false;

  constructor(local: MemorySocketAddress, remote: MemorySocketAddress, allowHalfOpen: boolean, encrypted: boolean) {
    super({ allowHalfOpen });
    this.localAddress = local.address;
    this.localPort = local.port;
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
    this.encrypted = encrypted ? true : undefined;
  }

  address(): MemorySocketAddress {
    return { address: this.localAddress, family: 'IPv4', port: this.localPort };
  }

  /** Emits `timeout` after `ms` without a byte read or written, as `net.Socket#setTimeout` does; 0 turns it off. */
  setTimeout(ms: number, callback?: () => void): this {
    this.timeout = ms;
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    if (ms === 0) {
      if (this.idleTimer !== null) clearTimeout(this.idleTimer);
      this.idleTimer = null;
    } else if (!this.destroyed) {
      if (this.idleTimer !== null) clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(onIdle, ms, this);
      this.idleTimer.unref();
    }
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** Ends the writable side and destroys the socket once everything written is flushed. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Marks activity for the idle timer. */
  touch(): void {
    this.idleTimer?.refresh();
  }

  /** The peer's output ended: this end reads an end of input, once. */
  endInput(): void {
    if (this.inputEnded || this.destroyed) return;
    this.inputEnded = true;
    this.push(null);
  }

  /** Receives bytes the peer wrote; `done` runs when this end's reader has room again. */
  receive(chunk: Buffer, done: (error?: Error | null) => void): void {
    // Bytes sent to a closed connection are lost; the HTTP layers notice the close itself.
    if (this.inputEnded || this.destroyed) {
      done();
      return;
    }
    this.touch();
    if (this.push(chunk)) done();
    else this.blockedPeerWrite = done;
  }

  override _read(): void {
    const blocked = this.blockedPeerWrite;
    if (blocked !== null) {
      this.blockedPeerWrite = null;
      blocked();
    }
  }

  // Everything that reaches the peer goes through setImmediate, in order: like a real socket, a
  // write is read by the other end in a later turn of the event loop, after the writer's own
  // ticks and promises (ws and node:http assume so). With process.nextTick an upstream's answer
  // could end before the relay had ended its request (its body's `end` is a tick of its own),
  // and the early-answer rule then closed the connection after every POST.
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.touch();
    const peer = this.peer;
    if (peer === null) callback();
    else setImmediate(deliver, peer, chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.peer !== null) setImmediate(endPeerInput, this.peer);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const blocked = this.blockedPeerWrite;
    this.blockedPeerWrite = null;
    if (blocked !== null) blocked();
    if (this.peer !== null) setImmediate(endPeerInput, this.peer);
    callback(error);
  }
}

function deliver(peer: MemorySocket, chunk: Buffer, done: (error?: Error | null) => void): void {
  peer.receive(chunk, done);
}

function endPeerInput(peer: MemorySocket): void {
  peer.endInput();
}

function onIdle(socket: MemorySocket): void {
  socket.emit('timeout');
}

let nextPort = 40_000;

/**
 * Makes a connected pair of in-memory sockets: `client` is what an HTTP client writes its
 * request to, `server` what an `http.Server` reads it from (`server.emit('connection', server)`).
 * The client end closes itself when its input ends (like `net.connect`), the server end stays
 * half-open for node:http to decide (like a `net.Server` made by `http.createServer`).
 */
export function memorySocketPair(options: { encrypted?: boolean } = {}): { client: MemorySocket; server: MemorySocket } {
  const encrypted = options.encrypted ?? false;
  nextPort = nextPort >= 60_000 ? 40_000 : nextPort + 1;
  const clientAddress: MemorySocketAddress = { address: '127.0.0.1', family: 'IPv4', port: nextPort };
  const serverAddress: MemorySocketAddress = { address: '127.0.0.1', family: 'IPv4', port: encrypted ? 443 : 80 };
  const client = new MemorySocket(clientAddress, serverAddress, false, encrypted);
  const server = new MemorySocket(serverAddress, clientAddress, true, encrypted);
  client.peer = server;
  server.peer = client;
  return { client, server };
}
