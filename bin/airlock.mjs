#!/usr/bin/env node
// The `airlock` CLI entry (package.json "bin", `npm start`). Registers tsx so the CLI and
// the handlers it runs stay TypeScript with no build step, then hands over to airlock.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./airlock.ts');
const code = await main(process.argv.slice(2));
// Exit explicitly: by now every command has closed what it opened, and a stray keep-alive
// socket must not hold the terminal.
process.exit(code);
