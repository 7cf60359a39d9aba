#!/usr/bin/env node
// The published entry point: the CLI is bundled into dist/ by scripts/build.mjs.
import '../dist/hanat.mjs';
