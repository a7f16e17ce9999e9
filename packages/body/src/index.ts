export { closingErrorResponse } from './error-response.js';
export { bodyLimit, LimitStream, limitResolver, type BodyLimitOptions, type LimitResolver } from './limit.js';
export { charset, mediaType, typeMatcher, type TypeMatcher } from './media-type.js';
