#!/usr/bin/env -S npx tsx
/**
 * CDK app entry (`cdk.json`: `npx tsx bin/app.ts`). Configuration comes from context
 * `airlock` and/or a JSON file (lib/config.ts); the stack is environment-agnostic.
 */
import { App } from 'aws-cdk-lib';
import { addAirlock } from '../lib/airlock-app';
import { loadConfig } from '../lib/config';

const app = new App();
addAirlock(app, loadConfig(app));
app.synth();
