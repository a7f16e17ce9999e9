import { Agent, request } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startUpstream, type Upstream } from '@relay/testkit';

/** An upstream that answers its own name (and counts what it served). */
export function named(name: string, delayMs = 0): Promise<Upstream> {
  return startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    const answer = (): void => {
      res.setHeader('x-upstream', name);
      res.end(name);
    };
    if (delayMs === 0) answer();
    else setTimeout(answer, delayMs);
  });
}

/** One response as the load client saw it. */
export interface Hit {
  status: number;
  upstream: string;
  retryAfter: string | undefined;
}

/**
 * Sends `count` GETs to `url`, `concurrency` at a time, over keep-alive connections; never
 * rejects (a failed request counts as status 0). `headersOf(i)` gives request i's headers.
 */
export async function load(url: string, count: number, concurrency: number, headersOf: (index: number) => Record<string, string> = () => ({})): Promise<Hit[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const hits: Hit[] = new Array(count);
  let nextIndex = 0;
  async function worker(): Promise<void> {
    while (nextIndex < count) {
      const index = nextIndex++;
      hits[index] = await get(url, agent, headersOf(index));
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return hits;
}

function get(url: string, agent: Agent, headers: Record<string, string>): Promise<Hit> {
  return new Promise((resolve) => {
    const req = request(url, { agent, headers });
    req.on('error', () => resolve({ status: 0, upstream: '', retryAfter: undefined }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => resolve({ status: 0, upstream: '', retryAfter: undefined }));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, upstream: String(res.headers['x-upstream'] ?? ''), retryAfter: res.headers['retry-after'] as string | undefined }),
      );
    });
    req.end();
  });
}

/** How many hits each upstream served. */
export function countBy(hits: readonly Hit[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const hit of hits) counts[hit.upstream] = (counts[hit.upstream] ?? 0) + 1;
  return counts;
}
