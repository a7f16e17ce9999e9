import type { ClientOptions, WebSocketServer } from 'ws';
import type { TransportConfig } from '@relay/core/transport';
import type { Policy } from './policy.js';

// What handshakes and sessions see of the transport binding that made them (`websocket.ts`),
// so that they never import it back.

/** @internal The options with their defaults. */
export interface WebSocketSettings {
  maxPayload: number;
  highWaterMark: number;
  idleTimeout: number;
  closeTimeout: number;
  perMessageDeflate: boolean;
  maxFragments: number;
  /** The message-level policy; `null` with none (a transparent session, unless `terminate`). */
  policy: Policy | null;
  /** Whether sessions terminate frames (a policy or `maxPayload` is set). */
  terminate: boolean;
}

/** `ws` options this version of `@types/ws` does not list yet. */
export interface CloseTimeoutOption {
  closeTimeout: number;
}

/** Client options: `ws` passes TLS ones (`servername` too) on to `tls.connect`. */
export type UpstreamOptions = ClientOptions & CloseTimeoutOption & { servername?: string };

/** What the transport asks of a session, terminating or transparent. */
export interface RelayedSession {
  /** Closes both sides with 1001 because the relay is shutting down. */
  shutdown(): void;
  /** Destroys both connections at once. */
  terminate(): void;
}

/** The binding as its handshakes and sessions use it. */
export interface SessionHost {
  readonly config: TransportConfig;
  readonly settings: WebSocketSettings;
  /** `ws:` or `wss:` and the target's host. */
  readonly address: URL;
  readonly clientOptions: UpstreamOptions;
  /** Completes the clients' handshakes; it never listens itself. */
  readonly server: WebSocketServer;
  /** Options of the transparent upstream request. */
  readonly tlsOptions: Record<string, unknown>;
  /** Handshakes in progress, so that shutdown can end them. */
  readonly handshakes: Set<object>;
  readonly sessions: Set<RelayedSession>;
  sessionEnded(session: RelayedSession): void;
}
