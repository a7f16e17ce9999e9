export { cookies, type CookiesOptions, type SameSite } from './cookies.js';
export type { AttributeRewrite, AttributeRewriter } from './attribute-rewrite.js';
