export {
  alwaysAllowedRequestHeaders,
  alwaysAllowedResponseHeaders,
  headers,
  type HeaderFunctionResult,
  type HeadersOptions,
  type RequestHeaderFunction,
  type ResponseHeaderFunction,
} from './headers.js';
