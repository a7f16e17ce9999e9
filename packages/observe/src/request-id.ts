import { randomUUID } from 'node:crypto';
import { RelayError, toRelayError, type ClientInfo, type HeaderRecord, type Handler, type ProxyRequest, type ProxyResponse, type Stage } from '@relay/core';
import { checkOptions, readBoolean, readString } from './options.js';
import { headerText } from './redact.js';

/** Options of `requestId()`. */
export interface RequestIdOptions {
  /** The header that carries the id, both ways. Default `x-request-id`. */
  header?: string;
  /** Keep a valid id the client sent; `false` always makes a new one. Default `true`. */
  trustIncoming?: boolean;
  /** Also send the id back to the client: on the response, and on the relay's own error answer (502, 504 …). Default `true`. */
  response?: boolean;
  /** Longest client id kept, in characters; a longer one is replaced. Default 128. */
  maxLength?: number;
  /** Makes a new id. Default `crypto.randomUUID`. */
  generate?: () => string;
}

const optionNames = ['header', 'trustIncoming', 'response', 'maxLength', 'generate'] as const;

/** Letters, digits and the punctuation of UUIDs, ULIDs, base64 and trace ids: nothing a log or header parser trips on. */
const safeId = /^[A-Za-z0-9._:+/=@-]+$/;

// A symbol-keyed slot on the client: a WeakMap entry per request costs microseconds of GC.
const kRequestId = Symbol('relay.requestId');
type IdSlot = ClientInfo & { [kRequestId]?: string };

/**
 * The request id of a client request, as `requestId()` chose it, or `undefined` when no
 * `requestId()` stage saw the request. For your own stages and log lines.
 *
 * @example
 * const id = requestIdOf(request.client);
 */
export function requestIdOf(client: ClientInfo): string | undefined {
  return (client as IdSlot)[kRequestId];
}

/**
 * Keeps the client's `X-Request-Id` when it is valid (1 to `maxLength` characters of
 * `A-Z a-z 0-9 . _ : + / = @ -`), otherwise makes one, and sends it upstream, back to the client
 * and to the access log (`requestIdOf(client)`). Place it first: every attempt of a retry then
 * carries the same id.
 *
 * @example
 * createRelay({ targetBaseUrl: 'http://api:8000', stages: [requestId(), retry({ maxRetries: 2 })] });
 */
export function requestId(options: RequestIdOptions = {}): Stage {
  checkOptions(options, optionNames, 'requestId()');
  const header = readString(options.header, 'x-request-id', 'header').toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(header)) throw new TypeError(`header must be a header name, got ${JSON.stringify(header)}`);
  const trustIncoming = readBoolean(options.trustIncoming, true, 'trustIncoming');
  const echo = readBoolean(options.response, true, 'response');
  const maxLength = options.maxLength ?? 128;
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`maxLength must be a whole number ≥ 1, got ${String(maxLength)}`);
  const generate = options.generate ?? randomUUID;
  if (typeof generate !== 'function') throw new TypeError('generate must be a function returning a string');

  function chooseId(request: ProxyRequest): string {
    if (trustIncoming) {
      const incoming = headerString(request.headers, header);
      if (incoming !== undefined && incoming.length <= maxLength && safeId.test(incoming)) return incoming;
    }
    const made = generate();
    if (typeof made !== 'string' || made === '' || !safeId.test(made)) {
      throw new TypeError(`requestId() generate() must return a non-empty id of safe characters, got ${JSON.stringify(made)}`);
    }
    return made;
  }

  return {
    name: 'requestId',
    wrap(next: Handler): Handler {
      return function requestIdStage(request: ProxyRequest): Promise<ProxyResponse> {
        const id = chooseId(request);
        (request.client as IdSlot)[kRequestId] = id;
        request.headers[header] = id;
        return echo ? echoed(next, request, header, id) : next(request);
      };
    },
  };
}

/**
 * The id on the response, and on the relay's own error answer when the pipeline fails: the 502 or
 * 504 is where a client most needs an id to quote (nginx's `add_header … always`, Envoy's
 * `always_set_request_id_in_response`).
 */
async function echoed(next: Handler, request: ProxyRequest, header: string, id: string): Promise<ProxyResponse> {
  let response: ProxyResponse;
  try {
    response = await next(request);
  } catch (error) {
    throw withAnswerHeader(toRelayError(error), header, id);
  }
  response.headers[header] = id;
  return response;
}

/** The same error (code, message, cause) with `header: id` added to its answer's headers. */
function withAnswerHeader(error: RelayError, header: string, id: string): RelayError {
  return new RelayError(error.code, error.message, { cause: error.cause, headers: { ...error.headers, [header]: id } });
}

/** A header of a record as one string (repeated values joined with `, `), or `undefined`. */
function headerString(headers: HeaderRecord, name: string): string | undefined {
  const value = headers[name];
  return value === undefined ? undefined : headerText(value);
}
