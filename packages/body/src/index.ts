export { closingErrorResponse } from './error-response.js';
export { bodyLimit, LimitStream, limitResolver, type BodyLimitOptions, type LimitResolver } from './limit.js';
export { charset, mediaType, typeMatcher, type TypeMatcher } from './media-type.js';
export { bodyCoding, createDecoder, createEncoder, decodeBuffer, defaultLevels, encodeBuffer, type BodyCoding, type CodingLevels, type ZlibTransform } from './codings.js';
export {
  compress,
  compressibleTypes,
  compressionPlanner,
  type CompressionPlan,
  type CompressionPlanner,
  type CompressOptions,
} from './compress.js';
export { cachedNegotiator, negotiateEncoding, parseAcceptEncoding, type ContentCoding, type Negotiated, type NegotiateOptions } from './negotiate.js';
export { addVaryAcceptEncoding, dropStaleValidators, markEncoded } from './representation.js';
export { link, linkFlushing } from './stream-link.js';
