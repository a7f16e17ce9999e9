import { connect as http2Connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type SecureClientSessionOptions } from 'node:http2';
import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Target, TlsOptions } from '@relay/core';
import type { Member } from './member.js';

/** A check's outcome: the response status, or 0 when none came. */
export type CheckStatus = (status: number) => void;

/**
 * The sessions of HTTP/2 health checks (`healthCheck.protocol: 'http2'`): one per target, opened at
 * its first check and kept for the next ones, as the HTTP/1.1 checks keep one connection alive.
 * An `http:` target is spoken to in h2c with prior knowledge (as `http2Transport` speaks to it; a
 * gRPC or h2c-only server cannot answer HTTP/1.1), an `https:` one over TLS with ALPN `h2` and the
 * relay's TLS settings. Sessions are unref'd: the checks alone never keep a process alive.
 *
 * @example
 * const sessions = new Http2Checks(tls);
 * const stream = sessions.get(member, '/health', (status) => record(status));
 * sessions.closeAll();
 */
export class Http2Checks {
  private readonly sessions = new Map<Member, ClientHttp2Session>();

  constructor(private tls: Readonly<TlsOptions>) {}

  /** New TLS settings: the sessions made with the old ones are closed. */
  useTls(tls: Readonly<TlsOptions>): void {
    this.tls = tls;
    this.closeAll();
  }

  /** One `GET path` on `member`'s session; `onStatus` gets the status, or 0 (more than once: the caller settles once). */
  get(member: Member, path: string, onStatus: CheckStatus): ClientHttp2Stream | null {
    let stream: ClientHttp2Stream;
    try {
      stream = this.session(member).request({ ':method': 'GET', ':path': path, ':authority': member.target.host, 'user-agent': 'relay-health-check' }, { endStream: true });
    } catch {
      // A session that is closing refuses new streams: the next check opens a fresh one.
      this.close(member);
      onStatus(0);
      return null;
    }
    stream.on('response', (headers) => {
      onStatus(Number(headers[':status']) || 0);
      stream.close(constants.NGHTTP2_CANCEL);
    });
    stream.on('error', () => onStatus(0));
    stream.on('close', () => onStatus(0));
    return stream;
  }

  /** Closes `member`'s session (a check that timed out: the next one starts on a new connection). */
  close(member: Member): void {
    const session = this.sessions.get(member);
    if (session === undefined) return;
    this.sessions.delete(member);
    session.destroy();
  }

  /** Closes the sessions of targets no longer in the pool. */
  keepOnly(members: readonly Member[]): void {
    if (this.sessions.size === 0) return;
    const kept = new Set(members);
    for (const member of this.sessions.keys()) if (!kept.has(member)) this.close(member);
  }

  closeAll(): void {
    for (const member of [...this.sessions.keys()]) this.close(member);
  }

  private session(member: Member): ClientHttp2Session {
    const open = this.sessions.get(member);
    if (open !== undefined && !open.closed && !open.destroyed) return open;
    const session = http2Connect(member.target.origin, this.connectOptions(member.target));
    session.unref();
    const forget = (): void => {
      if (this.sessions.get(member) === session) this.sessions.delete(member);
    };
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', forget);
    this.sessions.set(member, session);
    return session;
  }

  private connectOptions(target: Target): SecureClientSessionOptions {
    const secure = target.protocol === 'https:';
    // As node:https names the server (SNI) from the Host header: a DNS target's address is checked under its name.
    const servername = this.tls.servername ?? sniName(target);
    if (target.socketPath !== undefined) {
      const path = target.socketPath;
      return { createConnection: secure ? () => tlsConnect({ ...this.tls, path, servername: this.tls.servername ?? 'localhost', ALPNProtocols: ['h2'] }) : () => netConnect(path) };
    }
    return secure ? { ...this.tls, ...(servername === undefined ? {} : { servername }) } : {};
  }
}

/** The host name of `target`'s `Host` header, or `undefined` for an address (SNI carries names only). */
function sniName(target: Target): string | undefined {
  const host = target.host.startsWith('[') ? target.host.slice(1, target.host.indexOf(']')) : target.host.replace(/:\d+$/, '');
  return isIP(host) === 0 ? host : undefined;
}
