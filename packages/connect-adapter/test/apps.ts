// Real Express 5, Connect 3, Polka 0.5 (npm's `latest`) and Polka 1.0.0-next apps for the
// tests: each mounts the given middlewares the framework's own way, next to routes of its own.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import connect from 'connect';
import express from 'express';
import polka from 'polka';
import polkaNext from 'polka-next';
import { close, listen } from '@relay/testkit';
import type { ConnectMiddleware } from '../src/index.js';

/** What an app is built from: app-wide middlewares (body parsers), then mounts, then its own routes. */
export interface AppSpec {
  before?: ConnectMiddleware[];
  mounts: Array<[path: string, middleware: ConnectMiddleware]>;
}

/** A running app on 127.0.0.1. */
export interface RunningApp {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export interface Framework {
  name: string;
  /** Polka 0.5 matches a mount by the first path segment only. */
  nestedMounts: boolean;
  start(spec: AppSpec): Promise<RunningApp>;
}

/** The app's own routes, the same in every framework: GET /health, GET /authors, POST /own (echoes req.body). */
function health(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('app: healthy');
}

function authors(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('app: authors');
}

function own(req: IncomingMessage & { body?: unknown }, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ app: 'own', body: req.body }));
}

/** Every app's error handler: the error's status, and a JSON body the tests read. */
function appError(error: Error & { status?: number; code?: unknown }, res: ServerResponse): void {
  const status = typeof error.status === 'number' ? error.status : 500;
  res.writeHead(status, { 'content-type': 'application/json', 'x-handled-by': 'app' });
  res.end(JSON.stringify({ handledBy: 'app', name: error.name, code: error.code, message: error.message, causeCode: (error.cause as { code?: unknown } | undefined)?.code }));
}

function notFound(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'text/plain' }).end('app: not found');
}

async function run(server: Server): Promise<RunningApp> {
  const url = await listen(server);
  return { url, port: Number(new URL(url).port), server, close: () => close(server) };
}

export const express5: Framework = {
  name: 'Express 5',
  nestedMounts: true,
  async start(spec) {
    const app = express();
    for (const middleware of spec.before ?? []) app.use(middleware);
    for (const [path, middleware] of spec.mounts) app.use(path, middleware);
    app.get('/health', health);
    app.get('/authors', authors);
    app.post('/own', own);
    app.use(notFound);
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => appError(error, res));
    return run(createServer(app));
  },
};

export const connect3: Framework = {
  name: 'Connect 3',
  nestedMounts: true,
  async start(spec) {
    const app = connect();
    for (const middleware of spec.before ?? []) app.use(middleware);
    for (const [path, middleware] of spec.mounts) app.use(path, middleware);
    app.use('/health', health);
    app.use('/authors', authors);
    app.use('/own', own);
    app.use(notFound);
    app.use((error: Error, _req: IncomingMessage, res: ServerResponse, _next: connect.NextFunction) => appError(error, res));
    return run(createServer(app));
  },
};

export const polka05: Framework = {
  name: 'Polka 0.5',
  nestedMounts: false,
  async start(spec) {
    const app = polka({ onError: (error, _req, res) => appError(error, res), onNoMatch: notFound });
    for (const middleware of spec.before ?? []) app.use(middleware);
    for (const [path, middleware] of spec.mounts) app.use(path, middleware);
    app.get('/health', health);
    app.get('/authors', authors);
    app.post('/own', own);
    return run(createServer((req, res) => app.handler(req as never, res)));
  },
};

export const polka1: Framework = {
  name: 'Polka 1.0.0-next',
  nestedMounts: true,
  async start(spec) {
    const app = polkaNext({ onError: (error, _req, res) => appError(error as Error, res), onNoMatch: notFound });
    for (const middleware of spec.before ?? []) app.use(middleware);
    for (const [path, middleware] of spec.mounts) app.use(path, middleware);
    app.get('/health', health);
    app.get('/authors', authors);
    app.post('/own', own);
    return run(createServer((req, res) => app.handler(req as never, res, undefined as never)));
  },
};

export const frameworks: Framework[] = [express5, connect3, polka05, polka1];
