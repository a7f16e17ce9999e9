import { Readable } from 'node:stream';
import { errorBody, RelayError, type ProxyResponse } from '@relay/core';

/**
 * An error answer made by a stage, in the same one-line form core's error responses have, with
 * `Connection: close`: the client may still be sending a body nobody will read.
 *
 * @example
 * const answer = closingErrorResponse(new RelayError('ERR_BODY_TOO_LARGE', 'declared 2 MB'));
 */
export function closingErrorResponse(error: RelayError): ProxyResponse {
  const body = Buffer.from(errorBody(error));
  return {
    status: error.status,
    statusMessage: '',
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(body.length),
      'cache-control': 'no-store',
      connection: 'close',
    },
    body: Readable.from([body]),
    errorCode: error.code,
  };
}

const badBody = Buffer.from('400 Bad Request: the request body does not match its Content-Type or Content-Encoding\n');

/**
 * The 400 answer to a request body a transform cannot read (corrupt gzip, invalid JSON). Not a
 * `RelayError`: core has no code for a malformed body, and the stage answers it itself.
 *
 * @example
 * return badRequestBodyResponse();
 */
export function badRequestBodyResponse(): ProxyResponse {
  return {
    status: 400,
    statusMessage: '',
    headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(badBody.length), 'cache-control': 'no-store' },
    body: Readable.from([badBody]),
  };
}
