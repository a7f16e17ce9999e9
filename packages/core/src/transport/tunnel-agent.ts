import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { RelayError } from '../errors.js';
import type { TransportConfig } from '../types.js';

type ConnectOptions = Parameters<HttpsProxyAgent<string>['connect']>[1];

/**
 * The agent for an `https:` upstream through a forward proxy: a `CONNECT` tunnel, then TLS with
 * the upstream inside it (https-proxy-agent), with two changes:
 *
 * - https-proxy-agent reads the upstream's TLS options from each request, not from the agent: the
 *   relay's `tls` (its CA, client certificate …) is added to every tunnel's handshake here.
 * - A proxy that refuses the tunnel (any answer but 200 to the `CONNECT`: a 407, a policy 403, its
 *   own 502) is a failure to reach the upstream, `ERR_UPSTREAM_UNREACHABLE`. https-proxy-agent
 *   would instead replay the proxy's answer into node's parser as if the upstream had sent it,
 *   so the client would get the proxy's 407 and body (as curl and undici do, it is an error here).
 */
export class TunnelAgent extends HttpsProxyAgent<string> {
  /** The proxy's status for each request whose `CONNECT` it refused, until `connect` reads it. */
  private readonly refusals = new WeakMap<ClientRequest, number>();

  constructor(
    proxy: URL,
    options: ConstructorParameters<typeof HttpsProxyAgent>[1],
    private readonly tls: TransportConfig['tls'],
  ) {
    super(proxy.href, options);
    // One listener per agent: https-proxy-agent announces every CONNECT answer, with its request.
    this.on('proxyConnect', (answer: { statusCode: number }, req: ClientRequest) => {
      if (answer.statusCode !== 200) this.refusals.set(req, answer.statusCode);
    });
  }

  override async connect(req: ClientRequest, options: ConnectOptions): Promise<Socket> {
    const socket = await super.connect(req, { ...options, ...this.tls } as ConnectOptions);
    const status = this.refusals.get(req);
    if (status === undefined) return socket;
    this.refusals.delete(req);
    // The replay socket, never connected: dropped with the proxy's answer in it.
    socket.destroy();
    // `proxy.host` is host:port only: the proxy's userinfo (its credentials) is never in a message.
    throw new RelayError('ERR_UPSTREAM_UNREACHABLE', `egress proxy ${this.proxy.host} refused the CONNECT tunnel to ${options.host}:${options.port} with status ${status}`);
  }
}
