export {
  alwaysAllowedRequestHeaders,
  alwaysAllowedResponseHeaders,
  headers,
  type HeaderFunctionResult,
  type HeadersOptions,
  type RequestHeaderFunction,
  type ResponseHeaderFunction,
} from './headers.js';
export { rewriteLocation, type RewriteLocationOptions } from './rewrite-location.js';
