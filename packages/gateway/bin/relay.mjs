#!/usr/bin/env node
// The `relay` command: `relay serve gateway.yaml`, `relay check gateway.yaml`, `relay --help`.
import { main } from '@relay/gateway/cli';

const code = await main(process.argv.slice(2));
// Exit explicitly: serve resolves once everything is closed; nothing is left to flush.
process.exit(code);
