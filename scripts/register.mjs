// `node --import ./scripts/register.mjs file.ts` runs a TypeScript file of this workspace.
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./ts-hooks.mjs', import.meta.url);
