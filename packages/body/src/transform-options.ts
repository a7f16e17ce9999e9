// What the transform stages share: their options, and which messages they may touch at all.
import type { HeaderRecord } from '@relay/core';
import { mediaType, typeMatcher, type TypeMatcher } from './media-type.js';
import { assertKnownKeys, checkBytes, checkChoice, checkFunction, optionsObject } from './options.js';
import { defaultTransformTypes, type BodyAs } from './rewrite.js';

/** Options of `transformResponse()` and `transformRequest()` (buffered mode). */
export interface TransformOptions<A extends BodyAs = 'text'> {
  /** How `fn` sees the body: `text` (a string, by the `charset`), `json` (parsed) or `bytes` (a Buffer). Default `text`. */
  as?: A;
  /** Media types transformed; others pass untouched. Default by `as`: textual types, JSON types, or every type. */
  types?: readonly string[];
  /** Bodies larger than this, declared, as read or once decoded, pass untouched and streaming. Default 1 MiB. */
  maxBytes?: number;
}

/** Options of `transformResponseStream()` and `transformRequestStream()`. */
export interface StreamTransformOptions {
  /** Media types transformed; others pass untouched. Default `['text/html']`. */
  types?: readonly string[];
}

/** Options of `transformRequestStream()`. */
export interface RequestStreamTransformOptions extends StreamTransformOptions {
  /**
   * The most bytes a client's compressed (gzip, br, deflate) body may decode to; past it the request
   * gets 413. `bodyLimit()` counts the bytes as sent, and a small bomb decodes to gigabytes. Default
   * 1 MiB, as `bodyLimit()`'s `maxBytes`; `Infinity`: none.
   */
  maxDecodedBytes?: number;
}

/** The checked form of `RequestStreamTransformOptions`. */
export interface RequestStreamSettings {
  isTransformed: TypeMatcher;
  maxDecodedBytes: number;
}

/** The checked form of `TransformOptions`. */
export interface BufferedSettings {
  as: BodyAs;
  isTransformed: TypeMatcher;
  maxBytes: number;
}

const bufferedNames = ['as', 'types', 'maxBytes'] as const;
const streamNames = ['types'] as const;
const requestStreamNames = ['types', 'maxDecodedBytes'] as const;

/**
 * Checks the options of a buffered transform stage named `stage`.
 *
 * @example
 * const settings = resolveBufferedOptions(fn, { as: 'json' }, 'transformResponse');
 */
export function resolveBufferedOptions(fn: unknown, options: TransformOptions<BodyAs> | undefined, stage: string): BufferedSettings {
  checkFunction(fn, `${stage}: the transform`);
  const checked = optionsObject(options, stage);
  assertKnownKeys(checked, bufferedNames, stage);
  const as = checkChoice(checked.as ?? 'text', ['text', 'json', 'bytes'], `${stage}: as`);
  return {
    as,
    isTransformed: typeMatcher(checked.types ?? defaultTransformTypes[as], `${stage}: types`),
    maxBytes: checkBytes(checked.maxBytes ?? 1024 * 1024, `${stage}: maxBytes`),
  };
}

/**
 * Checks the options of a streaming transform stage named `stage`.
 *
 * @example
 * const isHtml = resolveStreamOptions(factory, { types: ['text/html'] }, 'transformResponseStream');
 */
export function resolveStreamOptions(factory: unknown, options: StreamTransformOptions | undefined, stage: string): TypeMatcher {
  checkFunction(factory, `${stage}: the Transform factory`);
  const checked = optionsObject(options, stage);
  assertKnownKeys(checked, streamNames, stage);
  return typeMatcher(checked.types ?? ['text/html'], `${stage}: types`);
}

/**
 * Checks the options of `transformRequestStream()`.
 *
 * @example
 * const settings = resolveRequestStreamOptions(factory, { maxDecodedBytes: 8 * 2 ** 20 });
 */
export function resolveRequestStreamOptions(factory: unknown, options: RequestStreamTransformOptions | undefined): RequestStreamSettings {
  const stage = 'transformRequestStream';
  checkFunction(factory, `${stage}: the Transform factory`);
  const checked = optionsObject(options, stage);
  assertKnownKeys(checked, requestStreamNames, stage);
  return {
    isTransformed: typeMatcher(checked.types ?? ['text/html'], `${stage}: types`),
    maxDecodedBytes: checkBytes(checked.maxDecodedBytes ?? 1024 * 1024, `${stage}: maxDecodedBytes`),
  };
}

/**
 * Whether a response's body may be transformed at all: it has one (not HEAD, 1xx, 204, 205, 304), it is
 * whole (not 206, no `Content-Range`) and its media type is one of `types`. A buffered transform
 * never takes an event stream: it would hold every event back.
 *
 * @example
 * if (!responseTransformable('GET', response.status, response.headers, isHtml, false)) return response;
 */
export function responseTransformable(method: string, status: number, headers: HeaderRecord, types: TypeMatcher, buffered: boolean): boolean {
  // A 205 has no content (RFC 9110 §15.3.6), as a 204: a transform must not give it some.
  if (method === 'HEAD' || status < 200 || status === 204 || status === 205 || status === 206 || status === 304) return false;
  if (headers['content-range'] !== undefined) return false;
  const type = mediaType(headers['content-type']);
  if (buffered && type === 'text/event-stream') return false;
  return types(type);
}
