#!/usr/bin/env node
// `npm run build`'s last step: links the workspace bins (`discluster`, `discluster-master`,
// `discluster-control`, `discord-sim`) into node_modules/.bin once `tsc -b` has built them, so
// `npx discluster …` runs this repository's CLI (see linkWorkspaceBins in setup.mjs).
import { linkWorkspaceBins } from './setup.mjs';

process.exitCode = await linkWorkspaceBins();
