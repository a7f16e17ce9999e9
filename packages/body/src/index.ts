export { BufferStream } from './buffer-stream.js';
export {
  bodyCoding,
  createDecoder,
  createEncoder,
  decodeBuffer,
  defaultLevels,
  encodeBuffer,
  type BodyCoding,
  type CodingLevels,
  type ZlibTransform,
} from './codings.js';
export { type TextCharset } from './charsets.js';
export { collectBody, type BodySide } from './collect.js';
export {
  compress,
  compressibleTypes,
  compressionPlanner,
  type CompressionPlan,
  type CompressionPlanner,
  type CompressOptions,
} from './compress.js';
export { badRequestBodyResponse, closingErrorResponse } from './error-response.js';
export { bodyLimit, LimitStream, limitResolver, type BodyLimitOptions, type LimitResolver } from './limit.js';
export { charset, mediaType, typeMatcher, type TypeMatcher } from './media-type.js';
export { cachedNegotiator, decodableAcceptEncoding, negotiateEncoding, parseAcceptEncoding, type ContentCoding, type Negotiated, type NegotiateOptions } from './negotiate.js';
export { addVaryAcceptEncoding, dropStaleValidators, markEncoded, markEncodedNotModified, strongIfNoneMatch } from './representation.js';
export { defaultTransformTypes, rewriteBody, RewriteError, textEncoding, type BodyAs, type BodyResult, type BodyValue } from './rewrite.js';
export { ignoreError, link, linkClientBody, linkFlushing, linkUpstreamBody } from './stream-link.js';
export { responseTransformable, type RequestStreamTransformOptions, type StreamTransformOptions, type TransformOptions } from './transform-options.js';
export { transformRequest, type RequestTransformContext, type RequestTransformer } from './transform-request.js';
export { prepareForTransform, transformResponse, type ResponseTransformContext, type ResponseTransformer } from './transform-response.js';
export { transformRequestStream, transformResponseStream, type TransformFactory } from './transform-stream.js';
