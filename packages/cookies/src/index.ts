export { cookies } from './cookies.js';
export type { CookiesOptions, SameSite } from './cookie-rules.js';
export { setCookieRewriter, type SetCookieRewriter, type SetCookieRewriterOptions } from './set-cookie-rewriter.js';
export type { AttributeRewrite, AttributeRewriter } from './attribute-rewrite.js';
