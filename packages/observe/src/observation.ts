import { subscribe } from 'node:diagnostics_channel';
import { relayChannels, toRelayError, type ClientInfo, type RelayError, type Handler, type ProxyRequest, type ProxyResponse, type RequestRefusedMessage, type Stage, type StageContext, type Target } from '@relay/core';
import { Binding, RequestRecord, type AttemptRunner, type Observer } from './record.js';

/**
 * The two stages of an observation. `request` goes outside `retry()` (it sees the client's request
 * once and the final response), `attempt` inside it (it sees every upstream attempt):
 * `stages: [obs.request, retry(), obs.attempt]`. Without `attempt` in the stages, `request`
 * counts what is inside it as one attempt.
 */
export interface Observation {
  /** The outer stage: one record per client request, finished when the response body ends. */
  readonly request: Stage;
  /** The inner stage: one attempt per call; place it after `retry()` (innermost is best). */
  readonly attempt: Stage;
}

type RecordSlot = ClientInfo & { [slot: symbol]: RequestRecord | undefined };

/** Builds one kind of observer for each relay the stages are wrapped into. */
export interface ObserverFactory {
  bind(context: StageContext): Observer & Partial<AttemptRunner>;
}

/**
 * Builds the request and attempt stages over `factories`. `outer` (the request-id stage) runs
 * just inside the request stage, outside the attempts.
 */
export function createObservation(factories: readonly ObserverFactory[], outer: Stage | null): Observation {
  // A symbol-keyed slot on the client rather than a WeakMap: a WeakMap entry per short-lived
  // request cost about 6 µs of garbage collection (ephemerons) per request here.
  const slot = Symbol('relay.observe.record');
  const withAttemptStage = new WeakSet<StageContext>();
  // Each attempt handler's own `next`: a request stage wrapped right around one calls it itself.
  const innerOf = new WeakMap<Handler, Handler>();
  const attempt: Stage = {
    name: 'observe.attempt',
    wrap(next: Handler, context: StageContext): Handler {
      withAttemptStage.add(context);
      let warned = false;
      const handler = function observeAttempt(request: ProxyRequest): Promise<ProxyResponse> {
        const record = (request.client as RecordSlot)[slot];
        if (record !== undefined) return attempted(record, next, request);
        // Only known once a request runs: stages are wrapped innermost first, the request stage after this one.
        if (!warned) {
          warned = true;
          context.logger.warn({ stage: 'observe.attempt' }, 'observe.attempt has no request stage outside it: nothing is recorded (stages: [obs.request, retry(), obs.attempt])');
        }
        return next(request);
      };
      innerOf.set(handler, next);
      return handler;
    },
  };
  const request: Stage = {
    name: 'observe',
    wrap(next: Handler, context: StageContext): Handler {
      const observers = factories.map((factory) => factory.bind(context));
      const runner = observers.find((observer) => typeof observer.runAttempt === 'function') ?? null;
      const binding = new Binding(observers, context.target, runner as AttemptRunner | null, context.logger);
      watchRefusals(binding);
      // Stages are wrapped innermost first: an attempt stage inside this one has registered by now.
      // With none, or with ours right inside (no stage between), this stage runs the attempt
      // itself: one promise per request instead of two (each runs async hooks under AsyncLocalStorage).
      const adjacent = innerOf.get(next);
      const attemptHere = adjacent !== undefined || !withAttemptStage.has(context);
      const inner = adjacent ?? next;
      // The request id stage runs inside the record, so a request it fails (a `generate` that
      // returns an unsafe id) is still logged and counted; the attempt, when this stage sends it, inside the id stage.
      const sendAttemptHere: Handler = (request) => attempted((request.client as RecordSlot)[slot]!, inner, request);
      const front = outer === null ? inner : outer.wrap(attemptHere ? sendAttemptHere : inner, context);
      const sendsAttempt = outer === null && attemptHere;
      return function observeRequest(request: ProxyRequest): Promise<ProxyResponse> {
        const record = new RequestRecord(binding, request);
        (request.client as RecordSlot)[slot] = record;
        binding.start(record);
        record.countBodyIn(request.body);
        return served(record, front, request, sendsAttempt);
      };
    },
  };
  return { request, attempt };
}

/**
 * The request's outcome into its record, and the attempt's when this stage sends it
 * (`attemptHere`). `then` rather than an async function: with AsyncLocalStorage on (any
 * OpenTelemetry SDK export switches it on), every promise runs async hooks, and an `await` adds a
 * promise of its own.
 */
function served(record: RequestRecord, next: Handler, request: ProxyRequest, attemptHere: boolean): Promise<ProxyResponse> {
  let pending: Promise<ProxyResponse>;
  try {
    pending = attemptHere ? sendAttempt(record, next, request) : next(request);
  } catch (error) {
    pending = Promise.reject(error);
  }
  return pending.then(
    (response) => {
      if (attemptHere) attemptAnswered(record, response);
      record.respond(response);
      return response;
    },
    (error: unknown) => {
      const relayError = toRelayError(error);
      if (attemptHere) attemptFailed(record, relayError, request);
      record.fail(relayError);
      throw error;
    },
  );
}

/** One attempt inside a retry: its outcome into the record, the request's left to the request stage. */
function attempted(record: RequestRecord, next: Handler, request: ProxyRequest): Promise<ProxyResponse> {
  let pending: Promise<ProxyResponse>;
  try {
    pending = sendAttempt(record, next, request);
  } catch (error) {
    pending = Promise.reject(error);
  }
  return pending.then(
    (response) => {
      attemptAnswered(record, response);
      return response;
    },
    (error: unknown) => {
      attemptFailed(record, toRelayError(error), request);
      throw error;
    },
  );
}

function sendAttempt(record: RequestRecord, next: Handler, request: ProxyRequest): Promise<ProxyResponse> {
  const binding = record.binding;
  record.beginAttempt(request.target);
  binding.attemptStart(record, request);
  return binding.runner === null ? next(request) : binding.runner.runAttempt(record, next, request);
}

function attemptAnswered(record: RequestRecord, response: ProxyResponse): void {
  record.attemptAnswered(response.target);
  record.binding.attemptEnd(record, response.status, null);
}

function attemptFailed(record: RequestRecord, error: RelayError, request: ProxyRequest): void {
  // A balancer inside this stage chose the attempt's target in place, on this same request.
  record.attemptFailed(request.target);
  record.binding.attemptEnd(record, 0, error);
}

/** The bindings of each relay whose requests are observed, by the relay's target. */
const refusalWatchers = new WeakMap<Target, Binding[]>();
let listening = false;

/**
 * Requests the relay answers itself (a bad path, outside the mount, shutting down) never reach a
 * stage: the observers hear of them on `relay:request:refused`, for their relay's target only.
 * One subscription for the process, and a weak map from each relay's target to its observers:
 * a relay that is dropped (the gateway's on each reload) takes its observers with it.
 */
function watchRefusals(binding: Binding): void {
  if (!binding.observers.some((observer) => typeof observer.refused === 'function')) return;
  const watchers = refusalWatchers.get(binding.target);
  if (watchers === undefined) refusalWatchers.set(binding.target, [binding]);
  else watchers.push(binding);
  if (listening) return;
  listening = true;
  subscribe(relayChannels.requestRefused, (message) => {
    const refused = message as RequestRefusedMessage;
    const bindings = refusalWatchers.get(refused.target);
    if (bindings !== undefined) for (const each of bindings) each.refused(refused);
  });
}
