export {
  alwaysAllowedRequestHeaders,
  alwaysAllowedResponseHeaders,
  headers,
  type HeaderFunctionResult,
  type HeadersOptions,
  type RequestHeaderFunction,
  type ResponseHeaderFunction,
} from './headers.js';
export { headerRules, type HeaderRuleApplier, type HeaderRules, type HopFacts, type PlainHeaders } from './header-rules.js';
export {
  locationRewriter,
  rewriteLocation,
  type LocationClient,
  type LocationHeaders,
  type LocationRewriter,
  type LocationRewriterOptions,
  type RewriteLocationOptions,
} from './rewrite-location.js';
