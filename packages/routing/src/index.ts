export { rewritePath, type RewriteFunction, type RewriteRules } from './rewrite-path.js';
export { when } from './when.js';
export { routes, type Route } from './routes.js';
export { compileConditions, type Conditions, type Matcher } from './conditions.js';
export { globToRegExp } from './glob.js';
export { router, type RouterOptions } from './router.js';
